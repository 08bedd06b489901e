//! Gatekeeper ConstraintTemplates (`targets[].rego` and `libs`) and constraints
//! (`spec.match`, `spec.parameters`, `spec.enforcementAction`), read from YAML documents.

use serde_json::Value;

use super::matcher::Match;
use super::rego::{Module, RegoVersion};
use super::{Enforcement, PolicyError};
use crate::manifest::Document as YamlDoc;

/// The Gatekeeper target whose Rego gitgate runs.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// A parsed ConstraintTemplate.
#[derive(Debug, Clone)]
pub struct Template {
    pub file: String,
    pub line: usize,
    pub name: String,
    /// The constraint kind it defines (`spec.crd.spec.names.kind`).
    pub kind: String,
    /// The main module first, then the libs.
    pub modules: Vec<Module>,
}

/// A parsed constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub file: String,
    pub line: usize,
    pub kind: String,
    pub name: String,
    pub matcher: Match,
    pub parameters: Value,
    pub enforcement: Enforcement,
}

pub fn is_template(v: &Value) -> bool {
    v.get("kind").and_then(Value::as_str) == Some("ConstraintTemplate")
        && v.get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.starts_with("templates.gatekeeper.sh/"))
}

pub fn is_constraint(v: &Value) -> bool {
    v.get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|a| a.starts_with("constraints.gatekeeper.sh/"))
}

fn invalid(file: &str, line: usize, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// Reads a ConstraintTemplate document of `file` (whose full text is `text`, used to find the
/// lines the Rego starts on so that compile errors point into the YAML file).
pub fn parse_template(file: &str, text: &str, doc: &YamlDoc) -> Result<Template, PolicyError> {
    let v = &doc.value;
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = v
        .pointer("/spec/crd/spec/names/kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            invalid(
                file,
                doc.line,
                "ConstraintTemplate has no spec.crd.spec.names.kind",
            )
        })?
        .to_string();
    let targets = v
        .pointer("/spec/targets")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            invalid(
                file,
                doc.line,
                format!("ConstraintTemplate {name} has no spec.targets"),
            )
        })?;
    let target = targets
        .iter()
        .find(|t| t.get("target").and_then(Value::as_str) == Some(ADMISSION_TARGET))
        .ok_or_else(|| {
            invalid(
                file,
                doc.line,
                format!("ConstraintTemplate {name} has no target {ADMISSION_TARGET}"),
            )
        })?;
    // Either the classic form (`rego`, `libs` on the target) or the newer one
    // (`code: [{engine: Rego, source: {rego, libs}}]`).
    let source = if target.get("rego").is_some() {
        target
    } else {
        rego_source_in_code(target).unwrap_or(target)
    };
    let rego = source.get("rego").and_then(Value::as_str).ok_or_else(|| {
        invalid(
            file,
            doc.line,
            format!("ConstraintTemplate {name} has no Rego (only other engines, such as CEL, which gitgate does not run)"),
        )
    })?;
    let mut block_lines = block_scalar_lines(text, doc.line).into_iter();
    // Each module needs a name of its own (regorus keys sources by name); libs are named
    // `file#libs[i]`, and their error lines are still lines of `file`.
    let module = |text: &str, offset: Option<usize>, name: String| Module {
        file: name,
        line_offset: offset.unwrap_or(0),
        text: text.to_string(),
        version: RegoVersion::Auto,
    };
    let mut modules = vec![module(rego, block_lines.next(), file.to_string())];
    let libs = source
        .get("libs")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, lib) in libs.iter().enumerate() {
        let lib = lib.as_str().ok_or_else(|| {
            invalid(
                file,
                doc.line,
                format!("ConstraintTemplate {name}: libs must be strings"),
            )
        })?;
        modules.push(module(lib, block_lines.next(), format!("{file}#libs[{i}]")));
    }
    Ok(Template {
        file: file.to_string(),
        line: doc.line,
        name,
        kind,
        modules,
    })
}

/// The `source` of the Rego engine in Gatekeeper's `code` form.
fn rego_source_in_code(target: &Value) -> Option<&Value> {
    target
        .get("code")?
        .as_array()?
        .iter()
        .find(|c| c.get("engine").and_then(Value::as_str) == Some("Rego"))?
        .get("source")
}

/// The 1-based lines of `rego: |` and of the `- |` entries after `libs:`, from `start` on, in
/// order: a block scalar's content starts on the next line, so these are the line offsets.
fn block_scalar_lines(text: &str, start: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_libs = false;
    for (i, line) in text.lines().enumerate().skip(start.saturating_sub(1)) {
        let t = line.trim();
        if i + 1 > start && t.starts_with("---") {
            break;
        }
        let block = |rest: &str| matches!(rest.trim(), "|" | "|-" | "|+");
        if let Some(rest) = t.strip_prefix("rego:") {
            if block(rest) && out.is_empty() {
                out.push(i + 1);
            }
        } else if t.starts_with("libs:") {
            in_libs = true;
        } else if in_libs && let Some(rest) = t.strip_prefix('-') {
            if block(rest) {
                out.push(i + 1);
            }
        } else if in_libs && !t.is_empty() && !line.starts_with("      ") && !t.starts_with('#') {
            // Lib bodies are indented deeper than this; a shallow key ends the list.
            if !line.trim_start().starts_with("package") {
                in_libs = t.starts_with('-') || line.len() - line.trim_start().len() > 10;
            }
        }
    }
    out
}

/// Reads a constraint document.
pub fn parse_constraint(file: &str, doc: &YamlDoc) -> Result<Constraint, PolicyError> {
    let v = &doc.value;
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            let why = match v.pointer("/metadata/name") {
                Some(other) if !other.is_null() && !other.is_string() => format!(
                    "metadata.name must be a string, found {} (quote it: YAML reads y, yes and on as booleans)",
                    crate::manifest::json_type(other)
                ),
                _ => "has no metadata.name".to_string(),
            };
            invalid(file, doc.line, format!("constraint of kind {kind}: {why}"))
        })?
        .to_string();
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let matcher: Match = match spec.get("match") {
        None | Some(Value::Null) => Match::default(),
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| {
            invalid(
                file,
                doc.line,
                format!("constraint {name}: invalid spec.match: {e}"),
            )
        })?,
    };
    let enforcement = match spec.get("enforcementAction").and_then(Value::as_str) {
        None | Some("") => Enforcement::Deny,
        Some("scoped") => scoped_action(&spec),
        Some(a) => Enforcement::parse(a).ok_or_else(|| {
            invalid(file, doc.line, format!("constraint {name}: unknown enforcementAction {a:?} (deny, warn, dryrun or scoped)"))
        })?,
    };
    Ok(Constraint {
        file: file.to_string(),
        line: doc.line,
        kind,
        name,
        matcher,
        parameters: spec
            .get("parameters")
            .cloned()
            .filter(|p| !p.is_null())
            .unwrap_or_else(|| Value::Object(Default::default())),
        enforcement,
    })
}

/// `enforcementAction: scoped`: the strongest action scoped to the validation webhook.
fn scoped_action(spec: &Value) -> Enforcement {
    let mut best = None;
    for entry in spec
        .get("scopedEnforcementActions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let for_webhook = entry
            .get("enforcementPoints")
            .and_then(Value::as_array)
            .is_none_or(|points| {
                points.iter().any(|p| {
                    matches!(
                        p.get("name").and_then(Value::as_str),
                        Some("validation.gatekeeper.sh") | Some("*")
                    )
                })
            });
        if !for_webhook {
            continue;
        }
        if let Some(a) = entry
            .get("action")
            .and_then(Value::as_str)
            .and_then(Enforcement::parse)
        {
            best = Some(match (best, a) {
                (Some(Enforcement::Deny), _) | (_, Enforcement::Deny) => Enforcement::Deny,
                (Some(Enforcement::Warn), _) | (_, Enforcement::Warn) => Enforcement::Warn,
                _ => Enforcement::Dryrun,
            });
        }
    }
    best.unwrap_or(Enforcement::Dryrun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_str;

    const TEMPLATE: &str = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sdemo
spec:
  crd:
    spec:
      names:
        kind: K8sDemo
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdemo
        violation[{"msg": "x"}] { true }
      libs:
        - |
          package lib.demo
          x := 1
"#;

    #[test]
    fn template_modules_and_lines() {
        let docs = parse_str("t.yaml", TEMPLATE).unwrap();
        let t = parse_template("t.yaml", TEMPLATE, &docs[0]).unwrap();
        assert_eq!(t.kind, "K8sDemo");
        assert_eq!(t.modules.len(), 2);
        assert_eq!(t.modules[0].line_offset, 12);
        assert_eq!(t.modules[1].line_offset, 16);
        assert!(t.modules[1].text.starts_with("package lib.demo"));
    }

    #[test]
    fn constraint_fields() {
        let text = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDemo\nmetadata: {name: c}\nspec:\n  enforcementAction: warn\n  match: {kinds: [{apiGroups: [\"\"], kinds: [Pod]}]}\n  parameters: {a: 1}\n";
        let docs = parse_str("c.yaml", text).unwrap();
        let c = parse_constraint("c.yaml", &docs[0]).unwrap();
        assert_eq!(c.enforcement, Enforcement::Warn);
        assert_eq!(c.parameters["a"], 1);
        let bad = text.replace("warn", "explode");
        let docs = parse_str("c.yaml", &bad).unwrap();
        let err = parse_constraint("c.yaml", &docs[0]).unwrap_err();
        assert!(err.to_string().starts_with("c.yaml:1:"), "{err}");
    }
}
