//! The policy author's tools beside `test`: `gitgate eval`, a query against policies, data
//! files and an input (as `opa eval -d DIR -i FILE QUERY`), and `gitgate input`, the exact
//! input document a policy sees for a manifest, a change or an AdmissionReview.
//!
//! Nothing here builds a document of its own: a manifest's objects become [`Change`]s and go
//! through [`crate::check::document`], as `check` builds them; a pull request's changes are
//! the documents `check` itself decides (it runs with one policy that reports its input); an AdmissionReview goes through
//! [`crate::input::parse_admission_review`], as the webhook reads it; the input one policy
//! sees (its parameters, or the manifest for a conftest-style policy) is
//! [`Policy::input_for`](crate::policy::Policy::input_for), as the decision evaluates it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_core::admission::Operation;
use serde_json::Value;

use crate::input::{Document, Identity, Source};
use crate::objects::Change;
use crate::policy::load::{SourceFile, read_paths};
use crate::policy::rego::{Module, Program};
use crate::policy::{Options, PolicyError, unit};

/// Why `eval` or `input` could not answer. Every variant names its input.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    #[error("{0}")]
    Eval(String),
    #[error("no policy named {0} (`gitgate policies` lists them)")]
    NoPolicy(String),
}

/// `gitgate eval`: compiles the Rego files under `paths` with the data files among them
/// (placed as `opa eval -d` places them), and evaluates `query` with `input`.
pub fn eval(
    paths: &[PathBuf],
    input: Option<&Path>,
    query: &str,
    options: &Options,
) -> Result<Value, AuthorError> {
    let mut rego: Vec<SourceFile> = Vec::new();
    let mut data = serde_json::json!({});
    for root in paths {
        let files = read_paths(std::slice::from_ref(root))?;
        let is_rego = root.to_string_lossy().ends_with(".rego");
        if root.is_file() && !is_rego {
            // A data file named with -d is data at the root, whatever its name, and must read.
            for f in &files {
                let value = read_document(Path::new(&f.path), &f.text)?;
                merge_into(&mut data, value, &f.path)?;
            }
        } else if root.is_dir() {
            let placed = unit::data_document(root, &files)?;
            merge_into(&mut data, placed, &root.display().to_string())?;
        }
        rego.extend(files.into_iter().filter(|f| f.path.ends_with(".rego")));
    }
    let modules: Vec<Module> = rego
        .iter()
        .map(|f| Module::new(&f.path, f.text.as_str()).with_version(options.rego_version))
        .collect();
    let mut program = Program::compile(&modules, options.eval_timeout)?;
    if data.as_object().is_some_and(|o| !o.is_empty()) {
        program = program
            .with_data(crate::input::json_to_rego(&data))
            .map_err(AuthorError::Eval)?;
    }
    let input = match input {
        Some(path) => {
            let text = read_text(path)?;
            Some(crate::input::json_to_rego(&read_document(path, &text)?))
        }
        None => None,
    };
    program.eval_query(query, input).map_err(AuthorError::Eval)
}

fn merge_into(data: &mut Value, from: Value, file: &str) -> Result<(), AuthorError> {
    unit::merge(data, from).map_err(|key| AuthorError::Read {
        file: file.to_string(),
        message: format!("merge conflict at data.{key}"),
    })
}

fn read_text(path: &Path) -> Result<String, AuthorError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
            AuthorError::Read {
                file: "-".into(),
                message: e.to_string(),
            }
        })?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| AuthorError::Read {
        file: path.display().to_string(),
        message: e.to_string(),
    })
}

/// One JSON or YAML document.
fn read_document(path: &Path, text: &str) -> Result<Value, AuthorError> {
    let file = path.display().to_string();
    let docs = crate::manifest::parse_str(&file, text).map_err(|e| AuthorError::Read {
        file: file.clone(),
        message: e.to_string(),
    })?;
    Ok(docs.into_iter().next().map_or(Value::Null, |d| d.value))
}

/// What `gitgate input` prints about.
pub struct InputRequest<'a> {
    /// A manifest or an AdmissionReview; in a range, the manifest roots (may be empty).
    pub file: Option<&'a Path>,
    /// A Git range to read the changes of, as `check` reads them, with its configuration.
    pub range: Option<RangeRequest<'a>>,
    pub old: Option<&'a Path>,
    pub delete: bool,
    pub policies: &'a [PathBuf],
    pub for_policy: Option<&'a str>,
    pub rego_version: crate::policy::rego::RegoVersion,
}

/// A Git range for `gitgate input`.
pub struct RangeRequest<'a> {
    pub repo: &'a Path,
    pub base: Option<&'a str>,
    pub head: Option<&'a str>,
    pub config: &'a crate::config::Config,
}

/// The policy `gitgate input` runs `check` with: its only finding is the input it was given.
const ECHO: &str = "# METADATA\n# title: The input document\n# custom:\n#   name: gitgate-input\n#   enforcement: warn\npackage gitgate.input_document\n\nimport rego.v1\n\nwarn contains json.marshal(input) if true\n";

/// The documents `check` decides for the changes of a range: `check` itself runs, with one
/// policy that reports its input, so that the document is the one `check` builds (rendered
/// sources, operations, `input.source`, `input.provenance`), not a copy of how it does it.
fn range_documents(
    range: &RangeRequest<'_>,
    roots: Option<&Path>,
) -> Result<Vec<Document>, AuthorError> {
    let options = Options {
        eval_timeout: Duration::from_secs(10),
        rego_version: crate::policy::rego::RegoVersion::Auto,
        ..Options::default()
    };
    let echo = SourceFile {
        path: "gitgate-input.rego".into(),
        text: ECHO.into(),
    };
    let set = crate::policy::load::load(&[echo], &options)?;
    let mut config = range.config.clone();
    if let Some(root) = roots {
        config.repository.paths = vec![root.display().to_string()];
    }
    let target = crate::check::Target::Range {
        repo: range.repo.to_path_buf(),
        base: range.base.map(str::to_string),
        head: range.head.map(str::to_string),
    };
    let report = crate::check::run_with(&target, &set, &config, Default::default())
        .map_err(|e| AuthorError::Eval(e.to_string()))?;
    let mut docs = Vec::new();
    for item in report.items.iter().filter(|i| i.policy == "gitgate-input") {
        let mut doc: Document =
            serde_json::from_str(&item.message).map_err(|e| AuthorError::Eval(e.to_string()))?;
        doc.parameters = None;
        docs.push(doc);
    }
    Ok(docs)
}

/// `gitgate input`: the input document of each object of `file` (or of the AdmissionReview it
/// holds, or of each change of a range), as a policy sees it.
pub fn input(req: &InputRequest<'_>) -> Result<Vec<Value>, AuthorError> {
    let docs = match (&req.range, req.file) {
        (Some(range), roots) => range_documents(range, roots)?,
        (None, Some(path)) => {
            let text = read_text(path)?;
            documents(&path.display().to_string(), &text, req)?
        }
        (None, None) => {
            return Err(AuthorError::Read {
                file: "-".into(),
                message: "a manifest, an AdmissionReview, or --base/--head is needed".into(),
            });
        }
    };
    let Some(name) = req.for_policy else {
        return Ok(docs
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect());
    };
    let options = Options {
        eval_timeout: Duration::from_secs(5),
        rego_version: req.rego_version,
        ..Options::default()
    };
    let set = if req.policies.is_empty() {
        crate::builtin::policy_set(&options)?
    } else {
        crate::policy::load::load_paths(req.policies, &options)?
    };
    let policy = set
        .policies()
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| AuthorError::NoPolicy(name.to_string()))?;
    let mut inputs = Vec::new();
    for d in &docs {
        let input = d.to_rego().map_err(|e| AuthorError::Eval(e.to_string()))?;
        inputs.extend(policy.input_for(d, &input));
    }
    Ok(inputs
        .into_iter()
        .map(|v| crate::input::rego::to_json(&v))
        .collect())
}

/// The documents of `file`: an AdmissionReview's request, or one per object of a manifest.
fn documents(file: &str, text: &str, req: &InputRequest<'_>) -> Result<Vec<Document>, AuthorError> {
    let read = |e: &dyn std::fmt::Display| AuthorError::Read {
        file: file.to_string(),
        message: e.to_string(),
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') && trimmed.contains("\"AdmissionReview\"") {
        let (_, review) =
            crate::input::parse_admission_review(file, text.as_bytes()).map_err(|e| read(&e))?;
        return Ok(vec![Document::from_review(review)]);
    }
    let objects = crate::manifest::expand_lists(
        crate::manifest::parse_str(file, text).map_err(|e| read(&e))?,
    );
    let old: Vec<crate::manifest::Document> = match req.old {
        Some(path) => {
            let old_text = read_text(path)?;
            let old_file = path.display().to_string();
            crate::manifest::expand_lists(
                crate::manifest::parse_str(&old_file, &old_text).map_err(|e| {
                    AuthorError::Read {
                        file: old_file.clone(),
                        message: e.to_string(),
                    }
                })?,
            )
        }
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for doc in objects {
        crate::manifest::require_object(file, &doc).map_err(|e| read(&e))?;
        let identity = Identity::of_object(&doc.value);
        let before = old
            .iter()
            .find(|o| identity.is_some() && Identity::of_object(&o.value) == identity)
            .map(|o| o.value.clone());
        let (operation, object, old_object) = if req.delete {
            (Operation::Delete, None, Some(doc.value.clone()))
        } else if let Some(before) = before {
            (Operation::Update, Some(doc.value.clone()), Some(before))
        } else {
            (Operation::Create, Some(doc.value.clone()), None)
        };
        let change = Change {
            operation,
            object,
            old_object,
            path: file.to_string(),
            line: doc.line,
            lines: doc.lines.clone(),
            rendered: None,
        };
        let document =
            crate::check::document(&change, &Source::premerge(None, None)).ok_or_else(|| {
                read(&format!(
                    "line {}: not a Kubernetes object (no apiVersion and kind)",
                    doc.line
                ))
            })?;
        out.push(document);
    }
    Ok(out)
}
