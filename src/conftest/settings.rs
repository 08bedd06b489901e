//! conftest mode's settings: the flags, over `conftest.toml` (in the working directory, or the
//! `-c FILE.toml` given), over conftest's defaults (`policy`, namespace `main`).

use std::path::{Path, PathBuf};

use super::ConftestError;
use super::engine::CompileOptions;
use crate::policy::rego::RegoVersion;

/// Everything conftest mode reads.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub policy: Vec<PathBuf>,
    pub data: Vec<PathBuf>,
    pub namespaces: Vec<String>,
    /// `--namespace` (or the file's `namespace`) was given: `verify` then filters by it.
    pub namespaces_given: bool,
    pub all_namespaces: bool,
    pub combine: bool,
    pub parser: Option<String>,
    pub trace: bool,
    pub strict: bool,
    pub show_builtin_errors: bool,
    pub quiet: bool,
    pub suppress_exceptions: bool,
    pub fail_on_warn: bool,
    pub no_color: bool,
    pub capabilities: Option<PathBuf>,
    /// `--ignore REGEX`: input paths it matches are skipped.
    pub ignore: Option<String>,
    /// `--stdin-filename NAME`: the name stdin is reported (and parsed) as.
    pub stdin_filename: Option<String>,
    /// `--proto-file-dirs`: where text protos' message types are looked up.
    pub proto_file_dirs: Vec<PathBuf>,
    pub rego_version: RegoVersion,
}

impl Settings {
    pub fn compile(&self, tests: bool) -> CompileOptions {
        CompileOptions {
            rego_version: self.rego_version,
            strict: self.strict,
            capabilities: self.capabilities.clone(),
            builtin_errors: self.show_builtin_errors,
            tests,
        }
    }

    /// Fills what the flags left unset from `conftest.toml`, then conftest's defaults.
    pub fn with_file(mut self, file: Option<&Path>) -> Result<Settings, ConftestError> {
        let file = match file {
            Some(f) => Some(f.to_path_buf()),
            None => Some(PathBuf::from("conftest.toml")).filter(|p| p.is_file()),
        };
        if let Some(file) = file {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ConftestError::new(format!("{name}: cannot read: {e}")))?;
            for (key, value) in read_toml(&name, &text)? {
                let strings = || match &value {
                    TomlValue::Str(s) => vec![s.clone()],
                    TomlValue::List(l) => l.clone(),
                    TomlValue::Bool(_) => Vec::new(),
                };
                let flag = matches!(value, TomlValue::Bool(true));
                match key.as_str() {
                    "policy" if self.policy.is_empty() => {
                        self.policy = strings().into_iter().map(PathBuf::from).collect()
                    }
                    "data" if self.data.is_empty() => {
                        self.data = strings().into_iter().map(PathBuf::from).collect()
                    }
                    "namespace" if self.namespaces.is_empty() => {
                        self.namespaces = strings();
                        self.namespaces_given = true;
                    }
                    "all-namespaces" => self.all_namespaces |= flag,
                    "combine" => self.combine |= flag,
                    "fail-on-warn" => self.fail_on_warn |= flag,
                    "no-color" => self.no_color |= flag,
                    "trace" => self.trace |= flag,
                    "strict" => self.strict |= flag,
                    "quiet" => self.quiet |= flag,
                    "suppress-exceptions" => self.suppress_exceptions |= flag,
                    "show-builtin-errors" => self.show_builtin_errors |= flag,
                    "parser" if self.parser.is_none() => self.parser = strings().pop(),
                    "ignore" if self.ignore.is_none() => self.ignore = strings().pop(),
                    "capabilities" if self.capabilities.is_none() => {
                        self.capabilities = strings().pop().map(PathBuf::from)
                    }
                    _ => {}
                }
            }
        }
        if self.policy.is_empty() {
            self.policy = vec![PathBuf::from("policy")];
        }
        if self.namespaces.is_empty() {
            self.namespaces = vec!["main".to_string()];
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TomlValue {
    Str(String),
    Bool(bool),
    List(Vec<String>),
}

/// The top-level keys of a `conftest.toml` (read by the `toml` crate) that conftest uses:
/// strings, booleans and lists of strings; a table is conftest's business, not a setting.
fn read_toml(file: &str, text: &str) -> Result<Vec<(String, TomlValue)>, ConftestError> {
    let value =
        super::formats::toml(text).map_err(|e| ConftestError::new(format!("{file}: {e}")))?;
    let mut out = Vec::new();
    for (key, v) in value.as_object().cloned().unwrap_or_default() {
        let parsed = match v {
            serde_json::Value::String(s) => TomlValue::Str(s),
            serde_json::Value::Bool(b) => TomlValue::Bool(b),
            serde_json::Value::Array(items) => TomlValue::List(
                items
                    .into_iter()
                    .map(|i| match i {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(ConftestError::new(format!(
                            "{file}: {key}: {other} is not a string"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(_) => continue,
            other => {
                return Err(ConftestError::new(format!(
                    "{file}: {key} = {other}: a string, a boolean or a list of strings"
                )));
            }
        };
        out.push((key, parsed));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_conftest_toml() {
        let got = read_toml(
            "conftest.toml",
            "# settings\npolicy = \"test\"\nnamespace = [\n  \"a\", # one\n  \"b\",\n]\ncombine = true\n",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("policy".into(), TomlValue::Str("test".into())),
                (
                    "namespace".into(),
                    TomlValue::List(vec!["a".into(), "b".into()])
                ),
                ("combine".into(), TomlValue::Bool(true)),
            ]
        );
    }
}
