//! conftest's command line and semantics, for `gitgate check` on files and `gitgate test` /
//! `verify` on conftest-style policies: documents read as written (any YAML, JSON or Dockerfile,
//! Kubernetes or not; no namespace injected), evaluated in the selected namespaces (`main` by
//! default, `--namespace` globs, `--all-namespaces`), counted and printed as conftest counts and
//! prints them (`N tests, P passed, W warnings, F failures, E exceptions`), with conftest's
//! builtins, data files and `conftest.toml`.
//!
//! A door of its own beside `check`: it shares the Rego engine and its compatibility rewrites
//! (`policy::compat`, `policy::lint`), not the Kubernetes input document, which conftest policies
//! never see.

pub mod engine;
pub mod formats;
pub mod hcl;
pub mod output;
pub mod parse;
pub mod settings;
pub mod strict;
pub mod textproto;
pub mod vcl;

use std::path::PathBuf;

use serde_json::Value;

pub use engine::{CheckResult, Engine, Outcome};
pub use settings::Settings;

/// Why conftest mode could not run (exit 2). The message names its input.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConftestError(pub String);

impl ConftestError {
    pub fn new(message: impl Into<String>) -> Self {
        ConftestError(message.into())
    }
}

/// Whether `namespace` is selected by `patterns` (conftest's globs: `*` any run of characters).
pub fn selected(namespace: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| glob_match(p, namespace))
}

/// `*` any run of characters (dots included), `?` one character, `[...]` a class; a pattern
/// that is not a glob selects nothing.
fn glob_match(pattern: &str, text: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .is_ok_and(|glob| glob.compile_matcher().is_match(text))
}

/// The namespaces to evaluate, in the engine's order.
pub fn namespaces(engine: &Engine, settings: &Settings) -> Vec<String> {
    let all = engine.namespaces();
    if settings.all_namespaces {
        return all;
    }
    all.into_iter()
        .filter(|n| selected(n, &settings.namespaces))
        .collect()
}

/// `gitgate check` in conftest mode: every input in every selected namespace.
pub fn check(settings: &Settings, paths: &[PathBuf]) -> Result<Vec<CheckResult>, ConftestError> {
    let engine = Engine::load(&settings.policy, &settings.data, &settings.compile(false))?;
    let ignore = match &settings.ignore {
        Some(re) => Some(
            regex::Regex::new(re)
                .map_err(|e| ConftestError::new(format!("--ignore {re:?}: {e}")))?,
        ),
        None => None,
    };
    textproto::set_dirs(settings.proto_file_dirs.clone());
    let mut inputs = parse::inputs(
        paths,
        settings.parser.as_deref(),
        settings.stdin_filename.as_deref(),
    )?;
    if let Some(re) = &ignore {
        inputs.retain(|i| !re.is_match(&i.name));
    }
    if inputs.is_empty() {
        return Err(ConftestError::new(
            "no input: name files, directories or - (stdin) to check",
        ));
    }
    let namespaces = namespaces(&engine, settings);
    let mut results = Vec::new();
    if settings.combine {
        let combined = parse::combine(
            inputs
                .into_iter()
                .map(|i| (i.name, Value::Array(i.documents)))
                .collect(),
        );
        for ns in &namespaces {
            let mut result = CheckResult {
                filename: "Combined".to_string(),
                namespace: ns.clone(),
                ..Default::default()
            };
            engine.check(&mut result, &combined, ns, settings.trace)?;
            trace_refs(&engine, ns, settings.trace, &mut result);
            results.push(result);
        }
        return Ok(results);
    }
    for ns in &namespaces {
        for input in &inputs {
            let mut result = CheckResult {
                filename: input.name.clone(),
                namespace: ns.clone(),
                ..Default::default()
            };
            for doc in &input.documents {
                engine.check(&mut result, doc, ns, settings.trace)?;
            }
            trace_refs(&engine, ns, settings.trace, &mut result);
            results.push(result);
        }
    }
    Ok(results)
}

/// `--trace`: regorus keeps no evaluation trace, so the trace names the queries evaluated with
/// their values (above) and the rules of other packages each namespace's rules refer to.
fn trace_refs(engine: &Engine, namespace: &str, trace: bool, result: &mut CheckResult) {
    if !trace {
        return;
    }
    for r in output::references(engine, namespace) {
        result.traces.push(format!("| refers to {r}"));
    }
}

/// The exit code of conftest-mode results, as conftest's: 1 when something fails; with
/// `--fail-on-warn`, 2 when something fails and 1 when something only warns; else 0.
pub fn exit_code(results: &[CheckResult], fail_on_warn: bool) -> u8 {
    let failures = results.iter().any(|r| !r.failures.is_empty());
    let warnings = results.iter().any(|r| !r.warnings.is_empty());
    match (failures, warnings, fail_on_warn) {
        (true, _, true) => 2,
        (true, _, false) => 1,
        (false, true, true) => 1,
        _ => 0,
    }
}

/// One unit test's outcome (`verify`/`test` in conftest mode).
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub file: String,
    pub namespace: String,
    /// `data.main.test_x`.
    pub name: String,
    pub passed: bool,
    pub error: Option<String>,
    pub prints: Vec<String>,
    /// `trace()` notes.
    pub notes: Vec<String>,
}

/// Runs the `test_` rules of the selected namespaces, in one program with the data files.
pub fn verify(settings: &Settings) -> Result<Vec<TestOutcome>, ConftestError> {
    let engine = Engine::load(&settings.policy, &settings.data, &settings.compile(true))?;
    let namespaces = if settings.namespaces_given || settings.all_namespaces {
        namespaces(&engine, settings)
    } else {
        engine.namespaces()
    };
    let mut out = Vec::new();
    for m in &engine.modules {
        if !namespaces.contains(&m.package) {
            continue;
        }
        for t in &m.tests {
            let name = format!("data.{}.{t}", m.package);
            if out.iter().any(|o: &TestOutcome| o.name == name) {
                continue;
            }
            let (result, prints, notes) = engine.run_test(&name);
            out.push(TestOutcome {
                file: m.file.clone(),
                namespace: m.package.clone(),
                passed: matches!(result, Ok(true)),
                error: result.err(),
                name,
                prints,
                notes,
            });
        }
    }
    Ok(out)
}
