//! OPA METADATA annotations of a gitgate Rego policy: the comment block above `package`, whose
//! `custom` section carries what a Gatekeeper constraint would (name, enforcement, match,
//! parameters), so that a plain Rego file is a complete policy.
//!
//! ```rego
//! # METADATA
//! # title: Privileged containers
//! # custom:
//! #   name: privileged-container
//! #   enforcement: deny
//! #   match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
//! #   parameters: {}
//! package gitgate.privileged_container
//! ```

use serde::Deserialize;
use serde_json::Value;

use super::PolicyError;
use super::matcher::Match;

/// The package-scoped METADATA of a module.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub custom: Custom,
}

/// gitgate's keys under `custom`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Custom {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enforcement: Option<String>,
    #[serde(default, rename = "match")]
    pub matcher: Option<Match>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// Reads the METADATA block that directly precedes the `package` line, if any.
pub fn parse(file: &str, text: &str) -> Result<Option<Metadata>, PolicyError> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(package_at) = lines
        .iter()
        .position(|l| l.trim_start().starts_with("package "))
    else {
        return Ok(None);
    };
    // Walk up over the comment block above `package`.
    let mut start = package_at;
    while start > 0 && lines[start - 1].trim_start().starts_with('#') {
        start -= 1;
    }
    let Some(meta_at) = (start..package_at).find(|&i| lines[i].trim() == "# METADATA") else {
        return Ok(None);
    };
    let yaml: String = lines[meta_at + 1..package_at]
        .iter()
        .map(|l| {
            let l = l.trim_start().trim_start_matches('#');
            l.strip_prefix(' ').unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    serde_saphyr::from_str::<Metadata>(&yaml)
        .map(Some)
        .map_err(|e| PolicyError::Invalid {
            file: file.to_string(),
            line: meta_at + 1 + e.location().map(|l| l.line() as usize).unwrap_or(0),
            message: format!(
                "invalid METADATA: {}",
                e.to_string().lines().next().unwrap_or("")
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_custom_block() {
        let text = "# a file comment\n\n# METADATA\n# title: T\n# custom:\n#   name: n\n#   enforcement: warn\n#   match:\n#     kinds: [{apiGroups: [\"\"], kinds: [Pod]}]\npackage p\n";
        let m = parse("p.rego", text).unwrap().unwrap();
        assert_eq!(m.title.as_deref(), Some("T"));
        assert_eq!(m.custom.name.as_deref(), Some("n"));
        assert_eq!(m.custom.matcher.unwrap().kinds[0].kinds, vec!["Pod"]);
    }

    #[test]
    fn none_without_block() {
        assert!(parse("p.rego", "# hello\npackage p\n").unwrap().is_none());
    }

    #[test]
    fn bad_yaml_names_file() {
        let err = parse("p.rego", "# METADATA\n# custom: [\npackage p\n").unwrap_err();
        assert!(err.to_string().starts_with("p.rego:"), "{err}");
    }
}
