//! Rego unit tests, run as `opa test` runs them: every `.rego` file under the paths is compiled
//! into one program, with the JSON and YAML files beside them as data (placed at their
//! directory's path under `data`, as OPA's loader places them), and every `test_` rule is evaluated; it passes when it is
//! `true`. `todo_test_` rules are reported as skipped. A parameterized test (`test_x[name] if
//! { some name, tc in cases; ... }`, or `contains`) is reported per sub-case, as OPA does.
//!
//! One exception to "one program": the gatekeeper-library layout, where policy directories
//! that are not inside one another define the same package and the same names in it (each
//! carries its own copy of its libs, and is tested with `opa test DIR`); parts of one package
//! in such directories that define different names are one package, as OPA merges them. Each top-most directory holding Rego files is then
//! a program with its subdirectories ([`Mode::PerDirectory`], said in the output), so a policy
//! whose tests sit in `tests/` below it stays one program and no test runs twice.
//!
//! A file that does not compile is an error of its own: it is reported and left out, and the
//! rest of the program runs (a whole-tree run never loses every result to one file).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;

use super::load::{SourceFile, package_of};
use super::rego::{Module, Program};
use super::{Options, PolicyError};

/// How one test rule ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Defined but not `true`, or undefined.
    Fail,
    /// The evaluation failed (a runtime error or the time limit).
    Error(String),
    Skip,
}

/// One sub-case of a parameterized test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubCase {
    /// The key (a string as written, any other value as JSON).
    pub name: String,
    pub pass: bool,
}

/// One test rule's result.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// `data.pkg.test_name`.
    pub rule: String,
    /// `data.pkg`.
    pub package: String,
    /// `test_name` (`test_x#01` for a second definition).
    pub name: String,
    /// The file that defines it, and the line of its head.
    pub file: String,
    pub line: usize,
    pub outcome: Outcome,
    pub duration: Duration,
    /// What `print()` wrote during the test.
    pub output: Vec<String>,
    /// The sub-cases of a parameterized test (empty otherwise).
    pub sub: Vec<SubCase>,
}

/// How the files were split into programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One program, as `opa test PATHS`.
    Whole,
    /// One program per top-most policy directory (the gatekeeper-library layout).
    PerDirectory,
}

/// The lines of one file that tests evaluated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCoverage {
    pub covered: BTreeSet<u32>,
    pub not_covered: BTreeSet<u32>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub mode: Mode,
    pub cases: Vec<TestCase>,
    /// Files that did not compile (left out), and programs that could not run.
    pub errors: Vec<String>,
    /// Per file, when coverage was asked for.
    pub coverage: Option<BTreeMap<String, FileCoverage>>,
}

impl Report {
    /// The share of lines covered over every file, in %, when coverage was gathered.
    pub fn total_coverage(&self) -> Option<f64> {
        let files = self.coverage.as_ref()?;
        let covered: usize = files.values().map(|f| f.covered.len()).sum();
        let all: usize = files
            .values()
            .map(|f| f.covered.len() + f.not_covered.len())
            .sum();
        Some(if all == 0 {
            100.0
        } else {
            covered as f64 * 100.0 / all as f64
        })
    }
}

/// What to run and gather.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only tests whose full name (`data.pkg.test_x`) matches.
    pub filter: Option<Regex>,
    pub coverage: bool,
    pub options: Options,
}

static TEST_HEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^((?:todo_)?test_[A-Za-z0-9_]*)\b([ \t]*\[[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\]|[ \t]+contains[ \t]+([A-Za-z_][A-Za-z0-9_]*))?")
        .expect("valid regex")
});

/// A test rule: the name it is evaluated by and the name it is reported as.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRule {
    pub internal: String,
    pub display: String,
    /// The line of its head (1-based).
    pub line: usize,
    /// For a parameterized test whose cases could be told apart: the rule (in the same
    /// package) that gives every case key, passing or not.
    pub cases: Option<String>,
    /// Whether the head is parameterized (`test_x[name]`, `test_x contains name`).
    pub parameterized: bool,
}

/// The test rules of a module, in order of appearance, and the module text to compile. A
/// name defined more than once is several tests, as in OPA, which reports the later ones as
/// `test_x#01`, `test_x#02`: they are renamed apart so that each body is judged on its own
/// (evaluated together, one passing body would hide a failing one).
///
/// For a parameterized test, the statements of its body up to the one that binds the case
/// key are copied, at the end of the text, into a rule that lists every case
/// (`__ggcases_test_x`): a case missing from the test's value is a failing case.
pub fn test_rules(text: &str) -> (String, Vec<TestRule>) {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut rules = Vec::new();
    let mut edits = Vec::new();
    let mut appended = String::new();
    for c in TEST_HEAD.captures_iter(text) {
        let m = c.get(1).expect("group 1");
        let name = m.as_str().to_string();
        let n = seen.entry(name.clone()).or_insert(0);
        let (internal, display) = if *n == 0 {
            (name.clone(), name.clone())
        } else {
            let internal = format!("{name}__dup{n:02}");
            edits.push((m.start(), m.end(), internal.clone()));
            (internal, format!("{name}#{n:02}"))
        };
        *n += 1;
        let key = c.get(3).or(c.get(4));
        let cases = key.and_then(|key| {
            let head = c.get(2).expect("a key goes with its head");
            let prefix = case_prefix(text, head.end(), key.as_str())?;
            let rule = format!("__ggcases_{internal}");
            appended.push_str(&format!(
                "\n{rule}{} {{\n{prefix}\n}}\n",
                &text[head.start()
                    ..text[head.end()..]
                        .find('{')
                        .map_or(head.end(), |at| head.end() + at)]
            ));
            Some(rule)
        });
        rules.push(TestRule {
            internal,
            display,
            line: text[..m.start()].matches('\n').count() + 1,
            cases,
            parameterized: key.is_some(),
        });
    }
    let mut out = text.to_string();
    for (start, end, name) in edits.into_iter().rev() {
        out.replace_range(start..end, &name);
    }
    out.push_str(&appended);
    (out, rules)
}

/// The statements of the body after `head_end`, up to and including the first that names
/// `key` (what binds it), or `None` when the body cannot be read that way.
fn case_prefix(text: &str, head_end: usize, key: &str) -> Option<String> {
    let open = head_end + text[head_end..].find('{')?;
    // Only `if {` or `{` between the head and the body.
    if !matches!(text[head_end..open].trim(), "" | "if") {
        return None;
    }
    let bytes = text.as_bytes();
    let word = Regex::new(&format!(r"\b{}\b", regex::escape(key))).ok()?;
    let (mut depth, mut i, mut stmt_start) = (0i32, open + 1, open + 1);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth -= 1,
            b'}' if depth == 0 => return None, // the body ended before binding the key
            b'}' => depth -= 1,
            b'\n' | b';' if depth == 0 => {
                let stmt = &text[stmt_start..i];
                let code = stmt.split('#').next().unwrap_or("");
                if word.is_match(code) {
                    return Some(text[open + 1..i].to_string());
                }
                stmt_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits files into the programs they form (see the module documentation).
pub fn programs(files: &[SourceFile]) -> (Mode, Vec<Vec<&SourceFile>>) {
    let rego: Vec<&SourceFile> = files.iter().filter(|f| f.path.ends_with(".rego")).collect();
    if rego.is_empty() {
        return (Mode::Whole, Vec::new());
    }
    let dir_of = |f: &SourceFile| {
        Path::new(&f.path)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    };
    // Per package, per directory, the names its files there define.
    let mut dirs_of_package: BTreeMap<String, BTreeMap<PathBuf, BTreeSet<String>>> =
        BTreeMap::new();
    for f in &rego {
        if let Some(p) = package_of(&f.text) {
            let names = super::compat::package_names([f.text.as_str()])
                .into_values()
                .flat_map(|n| n.rules.into_iter().chain(n.functions))
                .collect::<Vec<_>>();
            dirs_of_package
                .entry(p)
                .or_default()
                .entry(dir_of(f))
                .or_default()
                .extend(names);
        }
    }
    // Copies of one package in directories that are not inside one another: both define a
    // name (a copied lib, a test of the same name). A package whose parts in such directories
    // define different names is one package, as OPA merges it.
    let apart = dirs_of_package.values().any(|dirs| {
        dirs.iter().any(|(a, names_a)| {
            dirs.iter().any(|(b, names_b)| {
                a != b && !a.starts_with(b) && !b.starts_with(a) && !names_a.is_disjoint(names_b)
            })
        })
    });
    if !apart {
        return (Mode::Whole, vec![rego]);
    }
    let dirs: BTreeSet<PathBuf> = rego.iter().map(|f| dir_of(f)).collect();
    let tops: Vec<&PathBuf> = dirs
        .iter()
        .filter(|d| !dirs.iter().any(|o| o != *d && d.starts_with(o)))
        .collect();
    let groups = tops
        .iter()
        .map(|d| {
            rego.iter()
                .copied()
                .filter(|f| dir_of(f).starts_with(d))
                .collect()
        })
        .collect();
    (Mode::PerDirectory, groups)
}

/// The data document of the data files among `files` read from `root`, as OPA's loader
/// makes it: each JSON or YAML file placed at its directory's path relative to `root`
/// (`root/data.json` is `data`, `root/k8s/data.yaml` is `data.k8s`). A file named `data.json`,
/// `data.yaml` or `data.yml` that does not parse, is not an object or conflicts with another
/// is an error; any other JSON or YAML file (a sample manifest, a suite) that does is left
/// out, where OPA would refuse the whole run.
pub fn data_document(root: &Path, files: &[SourceFile]) -> Result<serde_json::Value, PolicyError> {
    let mut data = serde_json::Value::Object(Default::default());
    for f in files {
        let path = Path::new(&f.path);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let is_json = name.ends_with(".json");
        if !(is_json || name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let named = matches!(name, "data.json" | "data.yaml" | "data.yml");
        let invalid = |message: String| PolicyError::Invalid {
            file: f.path.clone(),
            line: 0,
            message,
        };
        if f.text.trim().is_empty() {
            continue;
        }
        let parsed: Result<serde_json::Value, String> = if is_json {
            serde_json::from_str(&f.text).map_err(|e| e.to_string())
        } else {
            serde_saphyr::from_str(&f.text).map_err(|e| e.to_string())
        };
        let value = match parsed {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) if named => return Err(invalid("a data file holds an object".into())),
            Err(e) if named => return Err(invalid(e)),
            _ => continue,
        };
        let mut prefixed = value;
        let dir = path.parent().unwrap_or(Path::new(""));
        let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
        for part in rel.iter().rev() {
            let mut o = serde_json::Map::new();
            o.insert(part.to_string_lossy().into_owned(), prefixed);
            prefixed = serde_json::Value::Object(o);
        }
        let mut merged = data.clone();
        match merge(&mut merged, prefixed) {
            Ok(()) => data = merged,
            Err(key) if named => return Err(invalid(format!("merge conflict at data.{key}"))),
            Err(_) => {}
        }
    }
    Ok(data)
}

/// Merges `from` into `into`, objects key by key; a different non-object value is a conflict
/// (`Err` holds its key path).
pub fn merge(into: &mut serde_json::Value, from: serde_json::Value) -> Result<(), String> {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, v).map_err(|at| format!("{k}.{at}"))?,
                    None => {
                        a.insert(k, v);
                    }
                }
            }
            Ok(())
        }
        (a, b) if *a == b => Ok(()),
        _ => Err(String::new()),
    }
}

/// Runs the test rules of `files`, with `data` as the base data document.
pub fn run(files: &[SourceFile], data: Option<&serde_json::Value>, run: &RunOptions) -> Report {
    let (mode, groups) = programs(files);
    let mut report = Report {
        mode,
        cases: Vec::new(),
        errors: Vec::new(),
        coverage: run.coverage.then(BTreeMap::new),
    };
    let data = data
        .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
        .map(|d| regorus::Value::from_json_str(&d.to_string()));
    let data = match data.transpose() {
        Ok(d) => d,
        Err(e) => {
            report.errors.push(format!("data files: {e}"));
            return report;
        }
    };
    for group in groups {
        run_program(&group, data.as_ref(), run, &mut report);
    }
    report
}

/// Compiles `rego`, leaving out each file that does not compile (reported), and runs its
/// test rules.
fn run_program(
    rego: &[&SourceFile],
    data: Option<&regorus::Value>,
    run: &RunOptions,
    report: &mut Report,
) {
    let options = &run.options;
    let mut files: Vec<&SourceFile> = rego.to_vec();
    let program = loop {
        if files.is_empty() {
            return;
        }
        let numbered: Vec<(String, Vec<TestRule>)> =
            files.iter().map(|f| test_rules(&f.text)).collect();
        let modules: Vec<Module> = files
            .iter()
            .zip(&numbered)
            .map(|(f, (text, _))| {
                Module::new(&f.path, text.as_str()).with_version(options.rego_version)
            })
            .collect();
        let compiled =
            crate::isolate::catch_panic(|| Program::compile_naming(&modules, options.eval_timeout))
                .unwrap_or_else(|panic| {
                    Err(super::rego::Refused {
                        error: PolicyError::Compile {
                            file: files[0].path.clone(),
                            message: format!("the Rego engine panicked: {panic}"),
                        },
                        files: Vec::new(),
                    })
                });
        match compiled {
            Ok(program) => break (program, numbered),
            // Every file an error names is left out at once, with its own errors.
            Err(refused) if !refused.files.is_empty() => {
                for (file, message) in refused.files {
                    report.errors.push(message);
                    files.retain(|f| f.path != file);
                }
            }
            Err(refused) => {
                report.errors.push(refused.error.to_string());
                return;
            }
        }
    };
    let (program, numbered) = program;
    let program = match data {
        Some(d) => match program.with_data(d.clone()) {
            Ok(p) => p,
            Err(e) => {
                report.errors.push(format!("data files: {e}"));
                return;
            }
        },
        _ => program,
    };
    for (f, (_, rules)) in files.iter().zip(&numbered) {
        let Some(package) = package_of(&f.text) else {
            continue;
        };
        let lines = f.text.lines().count() as u32;
        for rule in rules {
            let full = format!("{package}.{}", rule.display);
            if run.filter.as_ref().is_some_and(|re| !re.is_match(&full)) {
                continue;
            }
            let start = Instant::now();
            let mut case = TestCase {
                rule: full,
                package: package.clone(),
                name: rule.display.clone(),
                file: f.path.clone(),
                line: rule.line,
                outcome: Outcome::Skip,
                duration: Duration::ZERO,
                output: Vec::new(),
                sub: Vec::new(),
            };
            if !rule.display.starts_with("todo_") {
                let (outcome, output, sub) =
                    run_one(&program, &package, rule, run, report, lines, &f.path);
                case.outcome = outcome;
                case.output = output;
                case.sub = sub;
            }
            case.duration = start.elapsed();
            report.cases.push(case);
        }
    }
}

/// Runs one test rule on a thread of its own, against the limit: the engine's timer is not
/// read inside one long built-in call (`numbers.range(1, 1e8)`), so without a watchdog a
/// 500 ms limit let a test run for seconds.
fn run_one(
    program: &Program,
    package: &str,
    rule: &TestRule,
    run: &RunOptions,
    report: &mut Report,
    lines: u32,
    file: &str,
) -> (Outcome, Vec<String>, Vec<SubCase>) {
    let limit = run.options.eval_timeout;
    let coverage = run.coverage;
    let eval = |path: String| {
        let program = program.clone();
        crate::isolate::within(limit, move || {
            program.eval_traced(&path, regorus::Value::new_object(), coverage)
        })
    };
    let traced = match eval(format!("{package}.{}", rule.internal)) {
        Ok(t) => t,
        Err(missed) => {
            return (
                Outcome::Error(format!(
                    "{missed} (the limit of one test, --timeout-ms {})",
                    limit.as_millis()
                )),
                Vec::new(),
                Vec::new(),
            );
        }
    };
    if let (Some(into), Some(cov)) = (report.coverage.as_mut(), &traced.coverage) {
        for f in &cov.files {
            let entry = into.entry(f.path.clone()).or_default();
            // Lines past the file's end are the runner's own (the cases rules).
            let own = |l: &&u32| f.path != file || **l <= lines;
            entry.covered.extend(f.covered.iter().filter(own));
            entry.not_covered.extend(f.not_covered.iter().filter(own));
            let covered = entry.covered.clone();
            entry.not_covered.retain(|l| !covered.contains(l));
        }
    }
    // regorus writes `file:line: ` before each print; OPA writes what was printed.
    static LOCATION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^.*?:\d+: ").expect("valid regex"));
    let output = traced
        .prints
        .iter()
        .map(|p| LOCATION.replace(p, "").into_owned())
        .collect();
    let value = match traced.value {
        Err(e) => return (Outcome::Error(e), output, Vec::new()),
        Ok(v) => v,
    };
    if !rule.parameterized {
        let outcome = if value == Some(regorus::Value::Bool(true)) {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        return (outcome, output, Vec::new());
    }
    // A parameterized test: each key is a passing case; the cases rule names the others.
    let passing: Vec<regorus::Value> = match &value {
        Some(regorus::Value::Set(s)) => s.iter().cloned().collect(),
        Some(regorus::Value::Object(o)) => o
            .iter()
            .filter(|(_, v)| **v == regorus::Value::Bool(true))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    let mut all: Vec<regorus::Value> = rule
        .cases
        .as_ref()
        .and_then(|c| eval(format!("{package}.{c}")).ok())
        .and_then(|t| t.value.ok().flatten())
        .map(|v| match v {
            regorus::Value::Set(s) => s.iter().cloned().collect(),
            regorus::Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
    for p in &passing {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    if let Some(regorus::Value::Object(o)) = &value {
        for k in o.keys() {
            if !all.contains(k) {
                all.push(k.clone());
            }
        }
    }
    let sub: Vec<SubCase> = all
        .iter()
        .map(|k| SubCase {
            name: match k {
                regorus::Value::String(s) => s.to_string(),
                other => other.to_json_str().unwrap_or_default(),
            },
            pass: passing.contains(k),
        })
        .collect();
    let outcome = if !sub.is_empty() && sub.iter().all(|s| s.pass) {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    (outcome, output, sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    fn outcomes(files: &[SourceFile], run_options: &RunOptions) -> Vec<(String, Outcome)> {
        let r = run(files, None, run_options);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        r.cases
            .iter()
            .map(|t| (t.rule.clone(), t.outcome.clone()))
            .collect()
    }

    fn s(rule: &str, o: Outcome) -> (String, Outcome) {
        (rule.to_string(), o)
    }

    #[test]
    fn duplicate_test_names_are_separate_tests() {
        let files = [file(
            "d_test.rego",
            "package d\ntest_x { true }\ntest_x { false }\ntest_y { true }\n",
        )];
        assert_eq!(
            outcomes(&files, &RunOptions::default()),
            vec![
                s("data.d.test_x", Outcome::Pass),
                s("data.d.test_x#01", Outcome::Fail),
                s("data.d.test_y", Outcome::Pass),
            ]
        );
    }

    #[test]
    fn directories_sharing_a_package_are_separate_programs() {
        let files = [
            file("p/a/lib.rego", "package lib\nx := 1\n"),
            file("p/a/a_test.rego", "package a\ntest_a { data.lib.x == 1 }\n"),
            file("p/b/lib.rego", "package lib\nx := 2\n"),
            file("p/b/b_test.rego", "package b\ntest_b { data.lib.x == 2 }\n"),
        ];
        let (mode, groups) = programs(&files);
        assert_eq!((mode, groups.len()), (Mode::PerDirectory, 2));
        let r = run(&files, None, &RunOptions::default());
        assert!(r.cases.iter().all(|t| t.outcome == Outcome::Pass), "{r:?}");
        // A shared lib in a subdirectory stays with the policy that uses it.
        let files = [
            file("p/lib/lib.rego", "package lib\nx := 1\n"),
            file("p/a_test.rego", "package a\ntest_a { data.lib.x == 1 }\n"),
        ];
        assert_eq!(programs(&files).1.len(), 1);
    }

    #[test]
    fn tests_below_their_policy_are_one_program() {
        // OPA's library layout: policy.rego + tests/*_test.rego in one package.
        let files = [
            file("lib/a/policy.rego", "package a\nallow { input.x == 1 }\n"),
            file(
                "lib/a/tests/a_test.rego",
                "package a\ntest_a { allow with input as {\"x\": 1} }\n",
            ),
            file("lib/b/policy.rego", "package b\nallow { input.x == 2 }\n"),
            file(
                "lib/b/tests/b_test.rego",
                "package b\ntest_b { allow with input as {\"x\": 2} }\n",
            ),
        ];
        let (mode, groups) = programs(&files);
        assert_eq!((mode, groups.len()), (Mode::Whole, 1));
        assert_eq!(
            outcomes(&files, &RunOptions::default()),
            vec![
                s("data.a.test_a", Outcome::Pass),
                s("data.b.test_b", Outcome::Pass)
            ]
        );
    }

    #[test]
    fn parameterized_tests_report_each_case() {
        let text = "package p\nimport rego.v1\ncases := {\"one\": 1, \"two\": 2, \"three\": 3}\ntest_small[name] if {\n  some name, n in cases\n  n < 3\n}\ntest_set contains x if { some x in [1, 2]; x > 0 }\n";
        let r = run(&[file("p_test.rego", text)], None, &RunOptions::default());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let small = &r.cases[0];
        assert_eq!(small.outcome, Outcome::Fail);
        let mut sub = small.sub.clone();
        sub.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            sub,
            vec![
                SubCase {
                    name: "one".into(),
                    pass: true
                },
                SubCase {
                    name: "three".into(),
                    pass: false
                },
                SubCase {
                    name: "two".into(),
                    pass: true
                },
            ]
        );
        assert_eq!(r.cases[1].outcome, Outcome::Pass);
        assert_eq!(r.cases[1].sub.len(), 2);
    }

    #[test]
    fn a_file_that_does_not_compile_leaves_the_rest_running() {
        let files = [
            file("a_test.rego", "package a\ntest_a { true }\n"),
            file("b_test.rego", "package b\ntest_b { x := }\n"),
        ];
        let r = run(&files, None, &RunOptions::default());
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].contains("b_test.rego:2:"), "{:?}", r.errors);
        assert_eq!(r.cases.len(), 1);
        assert_eq!(r.cases[0].outcome, Outcome::Pass);
    }

    #[test]
    fn data_files_are_placed_at_their_directory() {
        let files = [
            file("root/data.json", "{\"allowed\": [\"a\"]}"),
            file("root/sub/data.yaml", "limit: 3\n"),
            file("root/sub/other.json", "{\"more\": true}"),
            file("root/samples/pod.yaml", "apiVersion: v1\nkind: Pod\n"),
            file("root/samples/svc.yaml", "apiVersion: v1\nkind: Service\n"),
            file("root/samples/list.yaml", "- 1\n"),
            file(
                "root/t_test.rego",
                "package t\ntest_d { data.allowed[0] == \"a\"; data.sub.limit == 3; data.sub.more }\n",
            ),
        ];
        let data = data_document(Path::new("root"), &files).unwrap();
        let r = run(&files, Some(&data), &RunOptions::default());
        assert_eq!(r.cases[0].outcome, Outcome::Pass, "{r:?}");
    }

    #[test]
    fn prints_and_coverage_are_gathered() {
        let files = [file(
            "c_test.rego",
            "package c\nimport rego.v1\nf(x) := 1 if x > 0\nunused if input.nope\ntest_c if {\n  print(\"hello\", 1)\n  f(1) == 1\n}\n",
        )];
        let r = run(
            &files,
            None,
            &RunOptions {
                coverage: true,
                ..Default::default()
            },
        );
        assert_eq!(r.cases[0].output, vec!["hello 1".to_string()], "{r:?}");
        let cov = &r.coverage.unwrap()["c_test.rego"];
        assert!(cov.covered.contains(&7), "{cov:?}");
        assert!(cov.not_covered.contains(&4), "{cov:?}");
    }

    #[test]
    fn pass_fail_skip() {
        let files = [
            file(
                "a.rego",
                "package a\nimport rego.v1\nallow if input.x == 1\n",
            ),
            file(
                "a_test.rego",
                "package a_test\nimport rego.v1\nimport data.a\ntest_ok if a.allow with input as {\"x\": 1}\ntest_bad if a.allow with input as {\"x\": 2}\ntodo_test_later if false\n",
            ),
        ];
        assert_eq!(
            outcomes(&files, &RunOptions::default()),
            vec![
                s("data.a_test.test_ok", Outcome::Pass),
                s("data.a_test.test_bad", Outcome::Fail),
                s("data.a_test.todo_test_later", Outcome::Skip),
            ]
        );
        let only = RunOptions {
            filter: Some(Regex::new("test_ok").unwrap()),
            ..Default::default()
        };
        assert_eq!(outcomes(&files, &only).len(), 1);
    }
}
