//! Turning files into a [`PolicySet`]: Rego modules (gitgate and conftest style), Gatekeeper
//! ConstraintTemplates bound to their constraints. Files come from disk or from the embedded
//! library alike, as [`SourceFile`]s.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::Value;

use super::expansion;
use super::matcher::Match;
use super::rego::{Module, Program};
use super::template::{self, Constraint, Template};
use super::{Enforcement, Flavor, Options, Policy, PolicyError, PolicySet, Skipped, metadata};
use crate::input::json_to_rego;
use crate::manifest;

/// A policy file's name and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// Whether a file holds Rego tests (loaded by `gitgate test`, never as policies).
pub fn is_test_file(path: &str) -> bool {
    path.ends_with("_test.rego")
}

fn is_policy_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("rego" | "yaml" | "yml" | "json")
    )
}

/// Reads every `.rego`, `.yaml`, `.yml` and `.json` file under the given files and directories
/// (hidden directories skipped), in a stable order.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<SourceFile>, PolicyError> {
    let mut files = Vec::new();
    for root in paths {
        if !root.exists() {
            return Err(PolicyError::not_found(root));
        }
        let walker = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| PolicyError::Io {
                file: e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| root.display().to_string()),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            if !entry.file_type().is_file() || !(is_policy_file(entry.path()) || entry.depth() == 0)
            {
                continue;
            }
            let path = entry.path().display().to_string();
            let text = std::fs::read_to_string(entry.path()).map_err(|source| PolicyError::Io {
                file: path.clone(),
                source,
            })?;
            files.push(SourceFile { path, text });
        }
    }
    Ok(files)
}

/// Loads policies from files on disk.
pub fn load_paths(paths: &[PathBuf], options: &Options) -> Result<PolicySet, PolicyError> {
    load(&read_paths(paths)?, options)
}

/// Loads policies from source files: every non-test Rego file is compiled into one program
/// (as `opa` and `conftest` do), each package with decision rules becoming a policy; every
/// ConstraintTemplate is compiled on its own and bound to each constraint of its kind.
pub fn load(files: &[SourceFile], options: &Options) -> Result<PolicySet, PolicyError> {
    let mut policies = Vec::new();
    let rego: Vec<&SourceFile> = files
        .iter()
        .filter(|f| f.path.ends_with(".rego") && !is_test_file(&f.path))
        .collect();
    if !rego.is_empty() {
        policies.extend(rego_policies(&rego, options)?);
    }
    let mut templates = Vec::new();
    let mut constraints = Vec::new();
    let mut skipped = Vec::new();
    let mut expansions = Vec::new();
    for f in files.iter().filter(|f| !f.path.ends_with(".rego")) {
        let policy_like =
            f.text.contains("ConstraintTemplate") || f.text.contains("constraints.gatekeeper.sh/");
        let docs = match manifest::parse_str(&f.path, &f.text) {
            Ok(docs) => docs,
            // A file that mentions templates or constraints must parse; any other is listed.
            Err(e) if policy_like => return Err(e.into()),
            Err(e) => {
                skipped.push(Skipped {
                    file: f.path.clone(),
                    line: 1,
                    what: format!("not read: {e}"),
                    value: None,
                });
                continue;
            }
        };
        for doc in docs {
            if template::is_template(&doc.value) {
                templates.push(template::parse_template(&f.path, &f.text, &doc)?);
            } else if template::is_constraint(&doc.value) {
                constraints.push(template::parse_constraint(&f.path, &doc)?);
            } else if expansion::is_expansion_template(&doc.value) {
                expansions.push(expansion::Expansion::parse(&f.path, &doc)?);
            } else {
                skipped.push(Skipped {
                    file: f.path.clone(),
                    line: doc.line,
                    what: describe_document(&doc.value),
                    value: is_sync_document(&doc.value).then(|| Arc::new(doc.value.clone())),
                });
            }
        }
    }
    policies.extend(bind_constraints(&templates, &constraints, options)?);
    expansion::check_cycles(&expansions)?;
    let mut set = PolicySet::new(policies);
    set.skipped = skipped;
    set.expansions = expansions;
    Ok(set)
}

/// Gatekeeper's `Config` (`config.gatekeeper.sh`) and `SyncSet` (`syncset.gatekeeper.sh`):
/// not policies, but their sync lists say what `data.inventory` holds, so they are kept.
pub fn is_sync_document(value: &Value) -> bool {
    let api = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    matches!(
        (api.split('/').next().unwrap_or(""), kind),
        ("config.gatekeeper.sh", "Config") | ("syncset.gatekeeper.sh", "SyncSet")
    )
}

/// `kind: ClusterPolicy (kyverno.io/v1) require-labels`: what a skipped document is.
fn describe_document(value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str);
    let api = value.get("apiVersion").and_then(Value::as_str);
    let name = value.pointer("/metadata/name").and_then(Value::as_str);
    if is_sync_document(value) {
        return format!(
            "not a policy: kind {}{}{}, a Gatekeeper sync config: serve and audit sync its kinds into data.inventory",
            kind.unwrap_or_default(),
            api.map(|a| format!(" ({a})")).unwrap_or_default(),
            name.map(|n| format!(" {n}")).unwrap_or_default()
        );
    }
    match kind {
        Some(kind) => format!(
            "not a policy, skipped: kind {kind}{}{}",
            api.map(|a| format!(" ({a})")).unwrap_or_default(),
            name.map(|n| format!(" {n}")).unwrap_or_default()
        ),
        None => "not a policy, skipped: a document without a kind".to_string(),
    }
}

/// Compiles a template (used by `load` and the suite runner).
pub fn compile_template(t: &Template, options: &Options) -> Result<Arc<Program>, PolicyError> {
    let modules: Vec<Module> = t
        .modules
        .iter()
        .map(|m| m.clone().with_version(options.rego_version))
        .collect();
    let mut program = Program::compile(&modules, options.eval_timeout)?;
    let main = program.packages.first().cloned().unwrap_or_default();
    if options.vm {
        program.compile_vm(&[format!("{main}.violation")]);
    }
    if !decision_rules(&t.modules[0].text)
        .iter()
        .any(|r| r == "violation")
    {
        return Err(PolicyError::Invalid {
            file: t.file.clone(),
            line: t.line,
            message: format!(
                "ConstraintTemplate {}: package {main} has no `violation` rule",
                t.name
            ),
        });
    }
    Ok(Arc::new(program))
}

/// The policy a constraint makes of its (compiled) template.
pub fn constraint_policy(t: &Template, program: Arc<Program>, c: &Constraint) -> Policy {
    Policy {
        name: c.name.clone(),
        origin: format!("{}:{}", c.file, c.line),
        flavor: Flavor::Gatekeeper,
        enforcement: c.enforcement,
        matcher: c.matcher.clone(),
        parameters_rego: json_to_rego(&c.parameters),
        parameters: c.parameters.clone(),
        package: program.packages.first().cloned().unwrap_or_default(),
        rules: vec!["violation".to_string()],
        has_exceptions: false,
        title: Some(t.name.clone()),
        description: None,
        program,
        batch: None,
    }
}

fn bind_constraints(
    templates: &[Template],
    constraints: &[Constraint],
    options: &Options,
) -> Result<Vec<Policy>, PolicyError> {
    let by_kind: HashMap<&str, &Template> =
        templates.iter().map(|t| (t.kind.as_str(), t)).collect();
    let mut compiled: HashMap<&str, Arc<Program>> = HashMap::new();
    let mut out = Vec::new();
    for c in constraints {
        let t = by_kind
            .get(c.kind.as_str())
            .ok_or_else(|| PolicyError::Invalid {
                file: c.file.clone(),
                line: c.line,
                message: format!(
                    "constraint {} is of kind {}, but no ConstraintTemplate defines that kind",
                    c.name, c.kind
                ),
            })?;
        let program = match compiled.get(t.kind.as_str()) {
            Some(p) => p.clone(),
            None => {
                let p = compile_template(t, options)?;
                compiled.insert(t.kind.as_str(), p.clone());
                p
            }
        };
        out.push(constraint_policy(t, program, c));
    }
    // A template without constraints does nothing (as in Gatekeeper), but must still compile.
    for t in templates {
        if !compiled.contains_key(t.kind.as_str()) {
            compile_template(t, options)?;
        }
    }
    Ok(out)
}

/// A rule head at the start of a line (the fallback of [`rule_heads`]); the lines of a
/// multi-line value (`denylist := [\n "apk",`) do not match it.
static RULE_HEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[|contains\b|if\b|=|:=|\{)")
        .expect("valid regex")
});

static PACKAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*package\s+([A-Za-z0-9_.\[\]\x22]+)").expect("valid regex")
});

/// The decision rules (and `exception`) a module defines ([`rule_heads`]).
pub fn decision_rules(text: &str) -> Vec<String> {
    let mut rules: Vec<String> = rule_heads(text)
        .into_iter()
        .filter(|name| is_decision_rule(name))
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

/// `violation`, `deny`, `warn`, their `_suffix` forms, and `exception`.
fn is_decision_rule(name: &str) -> bool {
    name == "exception"
        || ["violation", "deny", "warn"].iter().any(|base| {
            name.strip_prefix(base).is_some_and(|rest| {
                rest.is_empty()
                    || rest.strip_prefix('_').is_some_and(|s| {
                        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
            })
        })
}

/// The name of every rule a module defines, in order, one per definition (`deny[msg]`,
/// `deny contains msg`, `deny := ...` → `deny`; `default` rules left out). Read by regorus's
/// parser (Rego v0 syntax, then v1): Rego does not care where a line starts, so an indented
/// `deny` is a rule too. Where the module does not parse on its own, the heads that start a
/// line.
pub fn rule_heads(text: &str) -> Vec<String> {
    use regorus::unstable::{Parser, Rule, Source};
    let parse = |v1: bool| {
        let source = Source::from_contents("module.rego".into(), text.to_string()).ok()?;
        let mut parser = Parser::new(&source).ok()?;
        if v1 {
            parser.enable_rego_v1().ok()?;
        }
        parser.parse().ok()
    };
    match parse(false).or_else(|| parse(true)) {
        Some(module) => module
            .policy
            .iter()
            .filter(|rule| matches!(rule.as_ref(), Rule::Spec { .. }))
            .map(|rule| head_root(rule).to_string())
            .collect(),
        None => RULE_HEAD
            .captures_iter(text)
            .map(|c| c[1].to_string())
            .filter(|name| !matches!(name.as_str(), "package" | "import" | "default"))
            .collect(),
    }
}

/// The name a rule defines, its head's first segment: `deny[msg]`, `deny contains msg`,
/// `m[k] := v`, `a.b := v`, `f(x)` → `deny`, `m`, `a`, `f`.
pub(crate) fn head_root(rule: &regorus::unstable::Rule) -> &str {
    use regorus::unstable::{Rule, RuleHead};
    let refr = match rule {
        Rule::Spec {
            head:
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. },
            ..
        }
        | Rule::Default { refr, .. } => refr,
    };
    let text = refr.span().text();
    text.split(['[', '.']).next().unwrap_or(text).trim()
}

/// Whether a module follows gitgate's own convention: a METADATA block with `custom:` (name,
/// enforcement, match) or rules over the input document (`input.review`, `input.provenance`,
/// `input.source`, `input.parameters`).
pub fn is_native(text: &str) -> bool {
    (text.contains("# METADATA") && text.contains("custom:"))
        || [
            "input.review",
            "input.provenance",
            "input.source",
            "input.parameters",
        ]
        .iter()
        .any(|k| text.contains(k))
}

static RAW_INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\binput(\.([A-Za-z_][A-Za-z0-9_]*)|\[)").expect("valid regex"));

/// Whether a module reads the raw manifest as conftest policies do (`input.spec`,
/// `input.kind`, `input[_]`), not the input document (`input.review`, ...).
pub fn reads_raw_input(text: &str) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| RAW_INPUT.captures_iter(l).collect::<Vec<_>>())
        .any(|c| {
            !matches!(
                c.get(2).map(|m| m.as_str()),
                Some("review" | "provenance" | "source" | "parameters")
            )
        })
}

/// The package a module declares (`data.` prefixed), if any.
pub fn package_of(text: &str) -> Option<String> {
    PACKAGE.captures(text).map(|c| format!("data.{}", &c[1]))
}

/// The package holding the batch rules gitgate adds to a program of plain Rego policies.
const BATCH_PACKAGE: &str = "__gitgate_batch";

fn rego_policies(files: &[&SourceFile], options: &Options) -> Result<Vec<Policy>, PolicyError> {
    // Group the modules by package (from the source, before compiling, so that the batch
    // rules can be compiled in): a package with decision rules is one policy.
    let mut packages: BTreeMap<String, (Vec<String>, String, Option<metadata::Metadata>)> =
        BTreeMap::new();
    let mut native: Vec<String> = Vec::new();
    let mut raw: Vec<String> = Vec::new();
    let mut no_convention: Option<PolicyError> = None;
    for f in files {
        let Some(package) = package_of(&f.text) else {
            continue; // the compiler reports a module without a package
        };
        let entry = packages
            .entry(package)
            .or_insert_with(|| (Vec::new(), f.path.clone(), None));
        entry.0.extend(decision_rules(&f.text));
        if is_native(&f.text) {
            native.push(package_of(&f.text).unwrap_or_default());
        } else if reads_raw_input(&f.text) {
            raw.push(package_of(&f.text).unwrap_or_default());
        }
        if entry.2.is_none()
            && let Some(meta) = metadata::parse(&f.path, &f.text)?
        {
            entry.1 = f.path.clone();
            entry.2 = Some(meta);
        }
    }
    let mut out = Vec::new();
    for (package, (mut rules, origin, meta)) in packages {
        rules.sort();
        rules.dedup();
        let has_exceptions = rules.iter().any(|r| r == "exception");
        rules.retain(|r| r != "exception");
        if rules.is_empty() {
            continue; // a library package
        }
        let conftest = package == "data.main" || package.starts_with("data.main.");
        if !conftest
            && raw.contains(&package)
            && !native.contains(&package)
            && no_convention.is_none()
        {
            // It reads the raw manifest where gitgate gives the input document: it would
            // silently never fire. Reported once the program compiles (a compile error first).
            no_convention = Some(PolicyError::Invalid {
                file: origin.clone(),
                line: 1,
                message: format!(
                    "package {} has {} rules over the raw manifest (`input.<field>`) but \
                     follows no policy convention, so it would never fire: a conftest policy \
                     is `package main` (or `main.*`; other packages with `gitgate check \
                     --namespace`), a gitgate policy has a METADATA block with `custom:` or \
                     reads the input document (`input.review.object`)",
                    package.trim_start_matches("data."),
                    rules.join("/")
                ),
            });
        }
        let meta = meta.unwrap_or_default();
        let enforcement = match meta.custom.enforcement.as_deref() {
            None => Enforcement::Deny,
            Some(a) => Enforcement::parse(a).ok_or_else(|| PolicyError::Invalid {
                file: origin.clone(),
                line: 1,
                message: format!("METADATA custom.enforcement {a:?} is not deny, warn or dryrun"),
            })?,
        };
        let parameters = meta
            .custom
            .parameters
            .clone()
            .filter(|p| !p.is_null())
            .unwrap_or_else(|| Value::Object(Default::default()));
        let name = meta
            .custom
            .name
            .clone()
            .unwrap_or_else(|| package.trim_start_matches("data.").to_string());
        out.push(Policy {
            name,
            origin,
            flavor: if conftest {
                Flavor::Conftest
            } else {
                Flavor::Native
            },
            enforcement,
            matcher: meta.custom.matcher.clone().unwrap_or_else(Match::default),
            parameters_rego: json_to_rego(&parameters),
            parameters,
            package,
            rules,
            has_exceptions,
            title: meta.title.clone(),
            description: meta.description.clone(),
            program: Arc::new(Program::empty()),
            batch: None,
        });
    }
    let modules: Vec<Module> = files
        .iter()
        .map(|f| Module::new(&f.path, &f.text).with_version(options.rego_version))
        .collect();
    let mut program = Program::compile(&modules, options.eval_timeout)?;
    // Each policy's rules on the VM first: a batch rule runs on the VM only when all its
    // members do, so policies are batched with those on the same engine.
    let on_vm: Vec<bool> = if options.vm {
        let entries: Vec<String> = out.iter().flat_map(Policy::entry_points).collect();
        program.compile_vm(&entries);
        out.iter()
            .map(|p| program.engine_of(&p.entry_points()) == super::rego::Engine::Vm)
            .collect()
    } else {
        vec![false; out.len()]
    };
    let (batch_module, batches) = batch_rules(&out, &on_vm);
    if let Some(text) = batch_module {
        program.add_module(&Module::new(
            format!("<gitgate batch rules for {}>", files[0].path),
            text,
        ))?;
        if options.vm {
            let mut paths: Vec<String> = batches
                .iter()
                .zip(&on_vm)
                .filter_map(|(b, vm)| b.as_ref().filter(|_| *vm).map(|b| b.path.clone()))
                .collect();
            paths.sort();
            paths.dedup();
            program.compile_vm(&paths);
        }
    }
    let program = Arc::new(program);
    if let Some(e) = no_convention {
        return Err(e);
    }
    for (policy, batch) in out.iter_mut().zip(batches) {
        policy.program = program.clone();
        policy.batch = batch;
    }
    Ok(out)
}

/// One rule per group of policies that share their parameters and their engine (`on_vm`),
/// evaluating all their decision rules in one pass: `b0 := [[x | x := data.p.violation], ...]`
/// (`[]` when undefined). Precompiled, so that a decision parses no query.
fn batch_rules(
    policies: &[Policy],
    on_vm: &[bool],
) -> (Option<String>, Vec<Option<Arc<super::Batch>>>) {
    let mut groups: Vec<((&Value, bool), Vec<usize>)> = Vec::new();
    for (i, p) in policies.iter().enumerate() {
        if p.flavor == Flavor::Conftest {
            continue;
        }
        let key = (&p.parameters, on_vm.get(i).copied().unwrap_or(false));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let mut text = format!("package {BATCH_PACKAGE}\n");
    let mut assigned = vec![None; policies.len()];
    let mut any = false;
    for (g, (_, members)) in groups.iter().enumerate().filter(|(_, (_, m))| m.len() > 1) {
        let entries: Vec<(String, String)> = members
            .iter()
            .flat_map(|&i| {
                policies[i]
                    .rules
                    .iter()
                    .map(move |r| (policies[i].package.clone(), r.clone()))
            })
            .collect();
        let items: Vec<String> = entries
            .iter()
            .map(|(pkg, rule)| format!("[x | x := {pkg}.{rule}]"))
            .collect();
        // One entry per line: regorus refuses lines longer than 1,024 columns, and a library
        // of forty policies would make one.
        text.push_str(&format!("b{g} := [\n  {}\n]\n", items.join(",\n  ")));
        let batch = Arc::new(super::Batch {
            path: format!("data.{BATCH_PACKAGE}.b{g}"),
            entries,
        });
        for &i in members {
            assigned[i] = Some(batch.clone());
        }
        any = true;
    }
    (any.then_some(text), assigned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_decision_rules() {
        let text = "package main\ndeny[msg] { true }\nwarn_latest contains m if { true }\nviolation[{\"msg\": m}] {\n}\nexception[rules] { rules := [\"x\"] }\ndenying := 1\n";
        assert_eq!(
            decision_rules(text),
            vec!["deny", "exception", "violation", "warn_latest"]
        );
        assert_eq!(
            package_of("# c\npackage a.b\n").as_deref(),
            Some("data.a.b")
        );
    }

    #[test]
    fn an_indented_rule_is_a_rule() {
        // Rego does not care where a line starts: an indented `violation` was left out, and
        // its package read as a library that decides nothing.
        let v1 = "package indent\nimport rego.v1\n  violation contains {\"msg\": \"x\"} if {\n    input.review.object.kind == \"Pod\"\n  }\n\tdeny_latest contains \"y\" if true\nhelper := 1\n";
        assert_eq!(decision_rules(v1), vec!["deny_latest", "violation"]);
        let v0 = "package main\n  deny[msg] { msg := \"a\" }\ndefault warn_x = false\n";
        assert_eq!(decision_rules(v0), vec!["deny"]);
        assert_eq!(
            rule_heads(
                "package p\nimport rego.v1\nm[k] := 1 if { k := \"a\" }\nf(x) := x\ndeny contains 1 if true\ndeny contains 2 if true\n"
            ),
            ["m", "f", "deny", "deny"]
        );
        // What does not parse alone: the heads that start a line.
        assert_eq!(
            rule_heads("package p\ndeny[msg] { msg := \ndefault x = 1\nwarn_y { true }\n"),
            ["deny", "warn_y"]
        );
    }
}
