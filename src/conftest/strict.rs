//! conftest's `--strict` and `--capabilities`, on the policies' source: regorus has no strict
//! mode nor capabilities, so the checks that matter to policy authors are made here. `--strict`
//! refuses a variable assigned and never read, and a function argument never read (OPA's
//! `assigned var x unused`, `unused argument y`); `--capabilities FILE` refuses a call of a
//! built-in the file does not list (`undefined function http.send`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::ConftestError;

static STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*"|`[^`]*`"#).expect("valid regex"));
static ASSIGN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:=").expect("valid regex"));
static FUNC_HEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z_][A-Za-z0-9_]*)\(([^)]*)\)").expect("valid regex"));
static CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\(").expect("valid regex")
});
static HEAD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)").expect("valid regex"));
static IMPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^import\s+data\.([A-Za-z0-9_.]+)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?")
        .expect("valid regex")
});

/// The code of a module without comments and string contents.
pub(crate) fn code(text: &str) -> String {
    let no_comments: Vec<String> = text
        .lines()
        .map(|l| {
            let l = STRING.replace_all(l, "\"\"");
            l.split('#').next().unwrap_or("").to_string()
        })
        .collect();
    no_comments.join("\n")
}

/// Top-level blocks: a rule starts at column 0 and runs until the next line at column 0 that
/// does not continue it (`}`, `} else ...`).
fn blocks(code: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let starts = line
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && c != '}');
        if starts || out.is_empty() {
            out.push((n + 1, String::new()));
        }
        if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

/// Uses of `name` as a variable: not after a `.` (a field) nor as part of a longer word.
fn uses(text: &str, name: &str) -> usize {
    let re = Regex::new(&format!(
        r"(^|[^A-Za-z0-9_.]){}([^A-Za-z0-9_]|$)",
        regex::escape(name)
    ))
    .expect("valid regex");
    // Overlapping matches (`a,a`) are rare enough in this check.
    re.find_iter(text).count()
}

/// `--strict`.
pub fn unused(sources: &[(String, String)]) -> Result<(), ConftestError> {
    let mut problems = Vec::new();
    for (file, text) in sources {
        let code = code(text);
        for (line, block) in blocks(&code) {
            if block.starts_with("package") || block.starts_with("import") {
                continue;
            }
            for c in ASSIGN.captures_iter(&block) {
                let name = &c[1];
                // A top-level `x := ...` is a rule, not a variable.
                if block.starts_with(name) && c.get(1).is_some_and(|m| m.start() == 0) {
                    continue;
                }
                if name != "_" && uses(&block, name) == 1 {
                    problems.push(format!(
                        "{file}:{line}: rego_compile_error: assigned var {name} unused"
                    ));
                }
            }
            if let Some(c) = FUNC_HEAD.captures(&block) {
                for arg in c[2].split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    let plain = arg.chars().all(|ch| ch.is_alphanumeric() || ch == '_');
                    if plain && arg != "_" && uses(&block, arg) == 1 {
                        problems.push(format!(
                            "{file}:{line}: rego_compile_error: unused argument {arg}"
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConftestError::new(format!(
            "policy does not compile (--strict):\n{}",
            problems.join("\n")
        )))
    }
}

const KEYWORDS: &[&str] = &[
    "if", "not", "some", "every", "in", "contains", "else", "with", "as", "default",
];

/// `--capabilities FILE`: every call of a built-in that FILE does not list is refused.
pub fn capabilities(file: &Path, sources: &[(String, String)]) -> Result<(), ConftestError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConftestError::new(format!("{name}: cannot read: {e}")))?;
    let caps: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ConftestError::new(format!("{name}: invalid capabilities JSON: {e}")))?;
    let allowed: HashSet<String> = caps["builtins"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["name"].as_str().map(str::to_string))
        .collect();
    let mut defined: HashSet<String> = HashSet::new();
    let mut aliases: HashSet<String> = ["data", "input", "future", "rego"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (_, text) in sources {
        let code = code(text);
        defined.extend(HEAD.captures_iter(&code).map(|c| c[1].to_string()));
        for c in IMPORT.captures_iter(&code) {
            let alias = c
                .get(2)
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| c[1].rsplit('.').next().unwrap_or("").to_string());
            aliases.insert(alias);
        }
    }
    let mut problems = Vec::new();
    for (file, text) in sources {
        for (n, line) in code(text).lines().enumerate() {
            for c in CALL.captures_iter(line) {
                let call = &c[1];
                let first = call.split('.').next().unwrap_or("");
                if KEYWORDS.contains(&call)
                    || defined.contains(call)
                    || aliases.contains(first)
                    || allowed.contains(call)
                    || matches!(
                        call,
                        "parse_config" | "parse_config_file" | "parse_combined_config_files"
                    )
                {
                    continue;
                }
                problems.push(format!(
                    "{file}:{}: rego_type_error: undefined function {call}",
                    n + 1
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConftestError::new(format!(
            "policy does not compile (--capabilities {name}):\n{}",
            problems.join("\n")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_finds_unused_variables_and_arguments() {
        let src = "package main\n\nallow if {\n  input.b == \"foo\"\n  a := 1\n  b := 2\n  x := {\"a\": a}\n}\n\nf(x, y) if {\n  input.t == x\n} else := false if {\n  true\n}\n";
        let e = unused(&[("p.rego".into(), src.into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("assigned var b unused"), "{e}");
        assert!(e.contains("assigned var x unused"), "{e}");
        assert!(!e.contains("var a unused"), "{e}");
        assert!(e.contains("unused argument y"), "{e}");
        assert!(!e.contains("unused argument x"), "{e}");
    }
}
