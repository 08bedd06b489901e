//! conftest's policy engine on regorus: every `.rego` file of the policy paths in one program,
//! data files merged into `data`, conftest's builtins (`parse_config`, `parse_config_file`,
//! `parse_combined_config_files`) as host functions, and the evaluation of one document in one
//! namespace exactly as conftest counts it (`policy/engine.go`): each `deny`/`violation`/`warn`
//! rule definition is a test, an `exception` naming a rule turns its results into exceptions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::ConftestError;
use super::parse;
use crate::input::json_to_rego;
use crate::policy::rego::RegoVersion;

/// How policies are compiled.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    pub rego_version: RegoVersion,
    /// `--strict`: unused assigned variables and arguments are errors.
    pub strict: bool,
    /// `--capabilities FILE`: built-ins the file does not list are undefined.
    pub capabilities: Option<PathBuf>,
    /// `--show-builtin-errors`: a built-in's error fails the evaluation.
    pub builtin_errors: bool,
    /// Load `_test.rego` files too (`verify`/`test`).
    pub tests: bool,
}

/// A module's package and the rules conftest reads in it.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    pub file: String,
    /// Without `data.` (`main`, `main.gke`).
    pub package: String,
    /// Each `deny`/`violation`/`warn` rule definition, in order (duplicates kept: each is a test).
    pub rules: Vec<String>,
    pub has_exception: bool,
    /// `test_` rules.
    pub tests: Vec<String>,
}

/// The loaded program.
#[derive(Clone)]
pub struct Engine {
    engine: regorus::Engine,
    /// What `trace()` calls noted (OPA's notes), shared by the engine's clones.
    notes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    pub modules: Vec<ModuleInfo>,
    builtin_errors: bool,
}

/// One rule's (or test's) outcome in conftest's terms.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub message: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, Value>,
}

/// The results of one file (all its documents) in one namespace.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckResult {
    pub filename: String,
    pub namespace: String,
    pub successes: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<Outcome>,
    /// `print()` output, `file:line: text`.
    #[serde(skip)]
    pub prints: Vec<String>,
    /// `--trace`: the queries evaluated and what they gave.
    #[serde(skip)]
    pub traces: Vec<String>,
    /// Results of the documents already checked (a file's documents share one result).
    #[serde(skip)]
    pub(crate) counted: usize,
}

static WARNING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^warn(_[a-zA-Z0-9]+)*$").expect("valid regex"));
static FAILURE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(deny|violation)(_[a-zA-Z0-9]+)*$").expect("valid regex"));

/// The host function `trace()` calls are sent to.
const NOTE: &str = "gitgate_conftest_note";
static TRACE_CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^A-Za-z0-9_.])trace\(").expect("valid regex"));

pub fn is_warning(rule: &str) -> bool {
    WARNING.is_match(rule)
}

pub fn is_failure(rule: &str) -> bool {
    FAILURE.is_match(rule)
}

/// `deny_latest` → `latest`; `deny` → `` (what an `exception` names).
fn rule_suffix(rule: &str) -> &str {
    for prefix in ["violation", "deny", "warn"] {
        if rule == prefix {
            return "";
        }
        if let Some(rest) = rule.strip_prefix(&format!("{prefix}_")) {
            return rest;
        }
    }
    rule
}

fn module_info(file: &str, text: &str) -> Option<ModuleInfo> {
    let package = crate::policy::load::package_of(text)?
        .trim_start_matches("data.")
        .to_string();
    let mut info = ModuleInfo {
        file: file.to_string(),
        package,
        rules: Vec::new(),
        has_exception: false,
        tests: Vec::new(),
    };
    for name in &crate::policy::load::rule_heads(text) {
        let name = name.as_str();
        if is_failure(name) || is_warning(name) {
            info.rules.push(name.to_string());
        } else if name == "exception" {
            info.has_exception = true;
        } else if name.starts_with("test_") && !info.tests.iter().any(|t| t == name) {
            info.tests.push(name.to_string());
        }
    }
    Some(info)
}

/// Every `.rego` file under `paths` (test files only when `tests`), in a stable order.
pub fn rego_files(paths: &[PathBuf], tests: bool) -> Result<Vec<PathBuf>, ConftestError> {
    let mut out = Vec::new();
    for root in paths {
        if !root.exists() {
            return Err(ConftestError::new(format!(
                "{}: no such file or directory",
                root.display()
            )));
        }
        for entry in walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        {
            let entry = entry.map_err(|e| ConftestError::new(e.to_string()))?;
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_file()
                && name.ends_with(".rego")
                && (tests || !name.ends_with("_test.rego"))
            {
                out.push(entry.path().to_path_buf());
            }
        }
    }
    Ok(out)
}

/// Data files (`.json`, `.yaml`, `.yml`) under `paths`. `beside_policies`: files in a policy
/// directory that are not one mapping (a manifest list, a suite) are not data and are skipped.
fn data_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConftestError> {
    let mut out = Vec::new();
    for root in paths {
        if !root.exists() {
            return Err(ConftestError::new(format!(
                "{}: no such file or directory",
                root.display()
            )));
        }
        for entry in walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .follow_links(true)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        {
            let entry = entry.map_err(|e| ConftestError::new(e.to_string()))?;
            if entry.file_type().is_file()
                && matches!(
                    entry.path().extension().and_then(|e| e.to_str()),
                    Some("json" | "yaml" | "yml")
                )
            {
                out.push(entry.path().to_path_buf());
            }
        }
    }
    Ok(out)
}

/// Merges `value` into `into` at the root, as OPA's loader does (an object merges key by key;
/// the same leaf twice is a conflict).
fn merge(
    into: &mut serde_json::Map<String, Value>,
    value: Value,
    file: &str,
) -> Result<(), ConftestError> {
    let Value::Object(map) = value else {
        return Err(ConftestError::new(format!(
            "{file}: data must be an object at its root"
        )));
    };
    for (k, v) in map {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(more)) => {
                merge(existing, Value::Object(more), file)?
            }
            (Some(_), _) => {
                return Err(ConftestError::new(format!(
                    "{file}: merge error: data.{k} is already defined by another data file"
                )));
            }
            (None, v) => {
                into.insert(k, v);
            }
        }
    }
    Ok(())
}

impl Engine {
    /// Loads the policies of `policy_paths`, the data of `data_paths` and the data files beside
    /// the policies.
    pub fn load(
        policy_paths: &[PathBuf],
        data_paths: &[PathBuf],
        options: &CompileOptions,
    ) -> Result<Engine, ConftestError> {
        let files = rego_files(policy_paths, options.tests)?;
        if files.is_empty() {
            let shown: Vec<String> = policy_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return Err(ConftestError::new(format!(
                "no policies found in [{}]",
                shown.join(" ")
            )));
        }
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(false);
        engine.set_gather_prints(true);
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: std::time::Duration::from_secs(30),
            check_interval: std::num::NonZeroU32::new(64).expect("non-zero"),
        });
        register_builtins(&mut engine, policy_paths, options.builtin_errors)?;
        let notes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = notes.clone();
        engine
            .add_extension(
                NOTE.to_string(),
                1,
                Box::new(move |args: Vec<regorus::Value>| {
                    let note = args[0].as_string()?.to_string();
                    if let Ok(mut n) = noted.lock() {
                        n.push(note);
                    }
                    Ok(regorus::Value::from(true))
                }),
            )
            .map_err(|e| ConftestError::new(format!("builtins: {e}")))?;
        let mut modules = Vec::new();
        let mut sources = Vec::new();
        for file in &files {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(file)
                .map_err(|e| ConftestError::new(format!("{name}: cannot read: {e}")))?;
            // OPA's `trace(note)`: regorus keeps its notes to itself, so they go through a host
            // function that records them (for `--report notes`).
            let traced = TRACE_CALL.replace_all(&text, format!("${{1}}{NOTE}(").as_str());
            add_module(&mut engine, &name, &traced, options.rego_version)?;
            if let Some(info) = module_info(&name, &text) {
                modules.push(info);
            }
            sources.push((name, text));
        }
        if let Some(caps) = &options.capabilities {
            super::strict::capabilities(caps, &sources)?;
        }
        if options.strict {
            super::strict::unused(&sources)?;
        }
        // Data: -d paths, then the data files beside the policies (directories only).
        let mut data = serde_json::Map::new();
        for file in data_files(data_paths)? {
            let name = file.display().to_string();
            for value in parse::data_file(&file)? {
                merge(&mut data, value, &name)?;
            }
        }
        let dirs: Vec<PathBuf> = policy_paths
            .iter()
            .filter(|p| p.is_dir())
            .cloned()
            .collect();
        for file in data_files(&dirs)? {
            let name = file.display().to_string();
            // Beside policies, only a single mapping document is data (a suite or a manifest
            // kept with its policy is not).
            let Ok(values) = parse::data_file(&file) else {
                continue;
            };
            if let [value @ Value::Object(_)] = values.as_slice()
                && !is_manifest_like(value)
            {
                merge(&mut data, value.clone(), &name)?;
            }
        }
        if !data.is_empty() {
            engine
                .add_data(json_to_rego(&Value::Object(data)))
                .map_err(|e| ConftestError::new(format!("data: {e}")))?;
        }
        if let Err(e) = engine.eval_query("true".to_string(), false) {
            return Err(ConftestError::new(format!(
                "policy does not compile: {}",
                crate::policy::rego::format_error(&e.to_string(), &[])
            )));
        }
        let problems = crate::policy::lint::check(engine.get_modules());
        // The linter does not know conftest's builtins (and OPA's `net.lookup_ip_addr`), which
        // are host functions here.
        if let Some(p) = problems.iter().find(|p| {
            ![
                "parse_config",
                "parse_config_file",
                "parse_combined_config_files",
                "net.lookup_ip_addr",
                NOTE,
            ]
            .iter()
            .any(|b| {
                p.message.contains(&format!("function {b}:"))
                    || p.message.ends_with(&format!("function {b}"))
            })
        }) {
            return Err(ConftestError::new(format!("policy does not compile: {p}")));
        }
        Ok(Engine {
            engine,
            notes,
            modules,
            builtin_errors: options.builtin_errors,
        })
    }

    /// Every package, in the order first seen.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.modules {
            if !out.contains(&m.package) {
                out.push(m.package.clone());
            }
        }
        out
    }

    /// Evaluates one rule path with `input`; undefined is `None`.
    fn eval(
        &self,
        engine: &mut regorus::Engine,
        path: &str,
        prints: &mut Vec<String>,
    ) -> Result<Option<Value>, ConftestError> {
        engine.set_strict_builtin_errors(self.builtin_errors);
        let result = crate::isolate::catch_panic(|| engine.eval_rule(path.to_string()))
            .map_err(|p| ConftestError::new(format!("{path}: the Rego engine panicked: {p}")))?;
        if let Ok(more) = engine.take_prints() {
            prints.extend(more);
        }
        match result {
            Ok(regorus::Value::Undefined) => Ok(None),
            // Never unreadable: a null here read as a pass (`crate::input::rego::to_json`).
            Ok(v) => Ok(Some(crate::input::rego::to_json(&v))),
            Err(e) => {
                let message = crate::policy::rego::format_error(&e.to_string(), &[]);
                if self.builtin_errors {
                    Err(ConftestError::new(format!(
                        "query rule: evaluating policy: built-in error: {message}"
                    )))
                } else {
                    Err(ConftestError::new(format!(
                        "query rule: evaluating policy: {message}"
                    )))
                }
            }
        }
    }

    /// conftest's `check` of one document in one namespace.
    pub fn check(
        &self,
        result: &mut CheckResult,
        input: &Value,
        namespace: &str,
        trace: bool,
    ) -> Result<(), ConftestError> {
        let mut engine = self.engine.clone();
        engine.set_input(json_to_rego(input));
        let mut rules: Vec<&str> = Vec::new();
        let mut rule_count = 0;
        let mut has_exception = false;
        for m in self.modules.iter().filter(|m| m.package == namespace) {
            has_exception |= m.has_exception;
            for r in &m.rules {
                rule_count += 1;
                if !rules.contains(&r.as_str()) {
                    rules.push(r);
                }
            }
        }
        let exceptions_value = if has_exception {
            self.eval(
                &mut engine,
                &format!("data.{namespace}.exception"),
                &mut result.prints,
            )?
        } else {
            None
        };
        let mut successes = 0;
        for rule in rules {
            let suffix = rule_suffix(rule);
            let query = format!("data.{namespace}.exception[_][_] == {suffix:?}");
            let hits = exceptions_value
                .iter()
                .flat_map(crate::policy::exception_names)
                .filter(|n| n == suffix)
                .count();
            let exceptions: Vec<Outcome> = (0..hits)
                .map(|_| Outcome {
                    message: query.clone(),
                    metadata: Default::default(),
                })
                .collect();
            let path = format!("data.{namespace}.{rule}");
            let value = self.eval(&mut engine, &path, &mut result.prints)?;
            if trace {
                result.traces.push(format!(
                    "file: {} | query: {path} = {}",
                    result.filename,
                    value
                        .as_ref()
                        .map(Value::to_string)
                        .unwrap_or_else(|| "undefined".to_string())
                ));
            }
            let outcomes = outcomes(&path, value)?;
            if exceptions.is_empty() {
                for o in outcomes {
                    match o {
                        None => successes += 1,
                        Some(o) if is_failure(rule) => result.failures.push(o),
                        Some(o) => result.warnings.push(o),
                    }
                }
            }
            result.exceptions.extend(exceptions);
        }
        // A rule defined several times that passes gives one success: the difference is
        // counted as successes, as conftest does.
        let now = result.failures.len() + result.warnings.len() + result.exceptions.len();
        let here = now - result.counted + successes;
        if here < rule_count {
            successes += rule_count - here;
        }
        result.successes += successes;
        result.counted = now;
        Ok(())
    }
}

/// A rule's value as conftest reads it: `None` for a pass, `Some` for each message.
fn outcomes(path: &str, value: Option<Value>) -> Result<Vec<Option<Outcome>>, ConftestError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Ok(vec![None]);
    };
    if items.is_empty() {
        return Ok(vec![None]);
    }
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::String(message) => out.push(Some(Outcome {
                message,
                metadata: [("query".to_string(), Value::String(path.to_string()))]
                    .into_iter()
                    .collect(),
            })),
            Value::Object(mut map) => {
                let Some(Value::String(message)) = map.remove("msg") else {
                    return Err(ConftestError::new(format!(
                        "{path}: rule missing msg field: {}",
                        Value::Object(map)
                    )));
                };
                map.insert("query".to_string(), Value::String(path.to_string()));
                out.push(Some(Outcome {
                    message,
                    metadata: map,
                }));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A document that looks like a Kubernetes object (not data).
fn is_manifest_like(value: &Value) -> bool {
    value.get("apiVersion").is_some() && value.get("kind").is_some()
}

fn add_module(
    engine: &mut regorus::Engine,
    file: &str,
    text: &str,
    version: RegoVersion,
) -> Result<(), ConftestError> {
    let rewritten = crate::policy::compat::rewrite(text);
    let mut attempt = |v0: bool| {
        engine.set_rego_v0(v0);
        engine.add_policy(file.to_string(), rewritten.clone())
    };
    let result = match version {
        RegoVersion::V0 => attempt(true),
        RegoVersion::V1 => attempt(false),
        RegoVersion::Auto => attempt(false).or_else(|v1| attempt(true).map_err(|_| v1)),
    };
    result.map(|_| ()).map_err(|e| {
        ConftestError::new(format!(
            "policy does not compile: {}",
            crate::policy::rego::format_error(&e.to_string(), &[])
        ))
    })
}

/// Finds a file a policy names: as given, else beside each policy path (conftest resolves it
/// from the calling policy's directory, which a host function is not told).
fn locate(name: &str, roots: &[PathBuf]) -> PathBuf {
    let direct = PathBuf::from(name);
    if direct.is_absolute() || direct.exists() {
        return direct;
    }
    for root in roots {
        let dir = if root.is_dir() {
            root.clone()
        } else {
            root.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let candidate = dir.join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    direct
}

fn register_builtins(
    engine: &mut regorus::Engine,
    roots: &[PathBuf],
    builtin_errors: bool,
) -> Result<(), ConftestError> {
    let to_err = |e: anyhow::Error| ConftestError::new(format!("builtins: {e}"));
    let r = roots.to_vec();
    engine
        .add_extension(
            "parse_config_file".to_string(),
            1,
            Box::new(move |args: Vec<regorus::Value>| {
                let name = args[0].as_string()?.to_string();
                let path = locate(&name, &r);
                let value = parse::config_value(&path, None).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(json_to_rego(&value))
            }),
        )
        .map_err(to_err)?;
    let r = roots.to_vec();
    engine
        .add_extension(
            "parse_combined_config_files".to_string(),
            1,
            Box::new(move |args: Vec<regorus::Value>| {
                let mut files = Vec::new();
                for name in args[0].as_array()?.iter() {
                    let name = name.as_string()?.to_string();
                    let path = locate(&name, &r);
                    let value =
                        parse::config_value(&path, None).map_err(|e| anyhow::anyhow!("{e}"))?;
                    files.push((path.display().to_string(), value));
                }
                Ok(json_to_rego(&parse::combine(files)))
            }),
        )
        .map_err(to_err)?;
    engine
        .add_extension(
            "parse_config".to_string(),
            2,
            Box::new(|args: Vec<regorus::Value>| {
                let parser = args[0].as_string()?.to_string();
                let text = args[1].as_string()?.to_string();
                let value = parse::parse_text("-", &text, Some(&parser))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(json_to_rego(&parse::single(value)))
            }),
        )
        .map_err(to_err)?;
    engine
        .add_extension(
            "net.lookup_ip_addr".to_string(),
            1,
            Box::new(move |args: Vec<regorus::Value>| {
                let name = args[0].as_string()?.to_string();
                // OPA's built-in error: the call is undefined, unless --show-builtin-errors.
                let found = match lookup_ip_addr(&name) {
                    Ok(found) => found,
                    Err(e) if builtin_errors => return Err(e),
                    Err(_) => return Ok(regorus::Value::Undefined),
                };
                let addrs: std::collections::BTreeSet<regorus::Value> = found
                    .into_iter()
                    .map(|a| regorus::Value::from(a.as_str()))
                    .collect();
                Ok(regorus::Value::from(addrs))
            }),
        )
        .map_err(to_err)?;
    Ok(())
}

/// OPA's `net.lookup_ip_addr(name)`: the addresses the system resolver gives `name` (an IP
/// address is itself); an error when it resolves to nothing (a built-in error: undefined,
/// or the run's error with `--show-builtin-errors`).
fn lookup_ip_addr(name: &str) -> anyhow::Result<Vec<String>> {
    use std::net::ToSocketAddrs;
    let addrs = (name, 0)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("net.lookup_ip_addr: lookup {name}: {e}"))?;
    let mut out: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        anyhow::bail!("net.lookup_ip_addr: lookup {name}: no such host");
    }
    Ok(out)
}

/// Tests by namespace, for `verify`.
pub fn tests_by_namespace(modules: &[ModuleInfo]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in modules {
        let entry = out.entry(m.package.clone()).or_default();
        for t in &m.tests {
            if !entry.contains(t) {
                entry.push(t.clone());
            }
        }
    }
    out
}

impl Engine {
    /// Runs one `test_` rule: passes when it is defined and not false. Returns the outcome,
    /// the prints and the notes (`trace()`) of the run.
    pub fn run_test(&self, path: &str) -> (Result<bool, String>, Vec<String>, Vec<String>) {
        let mut engine = self.engine.clone();
        let mut prints = Vec::new();
        if let Ok(mut n) = self.notes.lock() {
            n.clear();
        }
        let r = self.eval(&mut engine, path, &mut prints);
        let notes = self.notes.lock().map(|n| n.clone()).unwrap_or_default();
        let r = match r {
            Ok(Some(Value::Bool(false))) | Ok(None) => Ok(false),
            Ok(Some(_)) => Ok(true),
            Err(e) => Err(e.to_string()),
        };
        (r, prints, notes)
    }
}
