//! Rego unit tests, run as `opa test` runs them: every `.rego` file under a path is compiled
//! into one program, and every `test_` rule is evaluated; it passes when it is `true`.
//! `todo_test_` rules are reported as skipped.
//!
//! One exception to "one program per path": when two directories define the same package,
//! they are separate policies that each carry their own copy of it (the gatekeeper-library
//! keeps a copy of its libs in every policy directory, and tests each with `opa test DIR`).
//! Each directory holding Rego files is then compiled on its own, with its subdirectories.

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

/// One test rule's result.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// `data.pkg.test_name`.
    pub rule: String,
    /// The file that defines it.
    pub file: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

static TEST_HEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^((?:todo_)?test_[A-Za-z0-9_]*)\b").expect("valid regex"));

/// A test rule: the name it is evaluated by and the name it is reported as.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRule {
    pub internal: String,
    pub display: String,
}

/// The test rules of a module, in order of appearance, and the module text to compile. A
/// name defined more than once is several tests, as in OPA, which reports the later ones as
/// `test_x#01`, `test_x#02`: they are renamed apart so that each body is judged on its own
/// (evaluated together, one passing body would hide a failing one).
pub fn test_rules(text: &str) -> (String, Vec<TestRule>) {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut rules = Vec::new();
    let mut edits = Vec::new();
    for c in TEST_HEAD.captures_iter(text) {
        let m = c.get(1).expect("group 1");
        let name = m.as_str().to_string();
        let n = seen.entry(name.clone()).or_insert(0);
        let rule = if *n == 0 {
            TestRule {
                internal: name.clone(),
                display: name.clone(),
            }
        } else {
            let internal = format!("{name}__dup{n:02}");
            edits.push((m.start(), m.end(), internal.clone()));
            TestRule {
                internal,
                display: format!("{name}#{n:02}"),
            }
        };
        *n += 1;
        rules.push(rule);
    }
    let mut out = text.to_string();
    for (start, end, name) in edits.into_iter().rev() {
        out.replace_range(start..end, &name);
    }
    (out, rules)
}

/// Splits files into the programs they form (see the module documentation).
pub fn programs(files: &[SourceFile]) -> Vec<Vec<&SourceFile>> {
    use std::collections::{BTreeMap, BTreeSet};
    let rego: Vec<&SourceFile> = files.iter().filter(|f| f.path.ends_with(".rego")).collect();
    let dir_of = |f: &SourceFile| {
        std::path::Path::new(&f.path)
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default()
    };
    let mut dirs_of_package: BTreeMap<String, BTreeSet<std::path::PathBuf>> = BTreeMap::new();
    for f in &rego {
        if let Some(p) = package_of(&f.text) {
            dirs_of_package.entry(p).or_default().insert(dir_of(f));
        }
    }
    if dirs_of_package.values().all(|dirs| dirs.len() <= 1) {
        return if rego.is_empty() {
            Vec::new()
        } else {
            vec![rego]
        };
    }
    let dirs: BTreeSet<std::path::PathBuf> = rego.iter().map(|f| dir_of(f)).collect();
    dirs.iter()
        .map(|d| {
            rego.iter()
                .copied()
                .filter(|f| dir_of(f).starts_with(d))
                .collect()
        })
        .collect()
}

/// Runs the test rules of `files` whose full name matches `filter`.
pub fn run(
    files: &[SourceFile],
    filter: Option<&Regex>,
    options: &Options,
) -> Result<Vec<TestCase>, PolicyError> {
    let mut out = Vec::new();
    for group in programs(files) {
        out.extend(run_program(&group, filter, options)?);
    }
    Ok(out)
}

/// Compiles `rego` into one program and runs its test rules.
fn run_program(
    rego: &[&SourceFile],
    filter: Option<&Regex>,
    options: &Options,
) -> Result<Vec<TestCase>, PolicyError> {
    let numbered: Vec<(String, Vec<TestRule>)> = rego.iter().map(|f| test_rules(&f.text)).collect();
    let modules: Vec<Module> = rego
        .iter()
        .zip(&numbered)
        .map(|(f, (text, _))| {
            Module::new(&f.path, text.as_str()).with_version(options.rego_version)
        })
        .collect();
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let program = Program::compile(&modules, options.eval_timeout)?;
    let mut out = Vec::new();
    for ((f, package), (_, rules)) in rego.iter().zip(&program.packages).zip(&numbered) {
        let package = package_of(&f.text).unwrap_or_else(|| package.clone());
        for rule in rules {
            let full = format!("{package}.{}", rule.display);
            if filter.is_some_and(|re| !re.is_match(&full)) {
                continue;
            }
            let start = Instant::now();
            let outcome = if rule.display.starts_with("todo_") {
                Outcome::Skip
            } else {
                let path = format!("{package}.{}", rule.internal);
                // On a thread of its own, against the limit: the engine's timer is not read
                // inside one long built-in call (`numbers.range(1, 1e8)`), so without a
                // watchdog a 500 ms limit let a test run for seconds.
                let program = program.clone();
                let limit = options.eval_timeout;
                match crate::isolate::within(limit, move || {
                    program.eval_rule(&path, regorus::Value::new_object(), None)
                }) {
                    Ok(Ok(Some(regorus::Value::Bool(true)))) => Outcome::Pass,
                    Ok(Ok(_)) => Outcome::Fail,
                    Ok(Err(e)) => Outcome::Error(e),
                    Err(missed) => Outcome::Error(format!(
                        "{missed} (the limit of one test, --timeout-ms {})",
                        limit.as_millis()
                    )),
                }
            };
            out.push(TestCase {
                rule: full,
                file: f.path.clone(),
                outcome,
                duration: start.elapsed(),
            });
        }
    }
    Ok(out)
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

    #[test]
    fn duplicate_test_names_are_separate_tests() {
        let files = [file(
            "d_test.rego",
            "package d\ntest_x { true }\ntest_x { false }\ntest_y { true }\n",
        )];
        let r = run(&files, None, &Options::default()).unwrap();
        let got: Vec<_> = r
            .iter()
            .map(|t| (t.rule.as_str(), t.outcome.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("data.d.test_x", Outcome::Pass),
                ("data.d.test_x#01", Outcome::Fail),
                ("data.d.test_y", Outcome::Pass),
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
        assert_eq!(programs(&files).len(), 2);
        let r = run(&files, None, &Options::default()).unwrap();
        assert!(r.iter().all(|t| t.outcome == Outcome::Pass), "{r:?}");
        // A shared lib in a subdirectory stays with the policy that uses it.
        let files = [
            file("p/lib/lib.rego", "package lib\nx := 1\n"),
            file("p/a_test.rego", "package a\ntest_a { data.lib.x == 1 }\n"),
        ];
        assert_eq!(programs(&files).len(), 1);
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
        let r = run(&files, None, &Options::default()).unwrap();
        let outcomes: Vec<_> = r
            .iter()
            .map(|t| (t.rule.as_str(), t.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("data.a_test.test_ok", Outcome::Pass),
                ("data.a_test.test_bad", Outcome::Fail),
                ("data.a_test.todo_test_later", Outcome::Skip),
            ]
        );
        let only = Regex::new("test_ok").unwrap();
        assert_eq!(
            run(&files, Some(&only), &Options::default()).unwrap().len(),
            1
        );
    }
}
