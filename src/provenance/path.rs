//! Paths into an object, as the traceability match reports them to users and to Rego policies.
//!
//! Syntax (one path, one field):
//!
//! ```text
//! spec.template.spec.containers[name=web].image
//! spec.template.spec.containers[name=web].ports[containerPort=9898,protocol=TCP].protocol
//! metadata.labels.team
//! metadata.labels["kustomize.toolkit.fluxcd.io/name"]
//! spec.tolerations[2]
//! ```
//!
//! - Field names are joined with `.`. A name that is not made only of ASCII letters, digits, `_`
//!   and `-` (label and annotation keys with `.` or `/`, ConfigMap keys with dots) is written as a
//!   JSON string in brackets, `["app.kubernetes.io/name"]`, so a path never has to be split on a
//!   dot that belongs to a key.
//! - An item of a list that Kubernetes merges by key (containers, env, volumes, ports, ...) is
//!   named by its merge key, `[name=web]`, or by all of them, `[containerPort=9898,protocol=TCP]`,
//!   in the order of Kubernetes' `patchMergeKey` / `listMapKeys` and with the API server's
//!   defaults filled in (a port written without a protocol is `protocol=TCP`). This is the
//!   identity the API server, strategic merge patch and server-side apply use (compare
//!   `managedFields`' `k:{"containerPort":9898,"protocol":"TCP"}`), so the path of a container
//!   does not change when someone reorders the list, and it names the same item in Git and in
//!   the cluster. A key value is written bare unless it is empty or holds one of `[ ] = , "`,
//!   `\` or whitespace; then it is a JSON string: `[mountPath="/a b"]`.
//! - Any other list item is named by its position, `[2]`: the position in the list that holds
//!   the value reported (the object's list for what the object carries; Git's list for a value
//!   only Git has).
//!
//! The syntax is close to kubectl's JSONPath and to the field paths of Kubernetes' own
//! validation errors (`spec.template.spec.containers[0].image`), which users already read,
//! while staying stable under reordering. Policies can match on it with `startswith`,
//! `endswith`, `contains` or a regex.

use std::borrow::Cow;

use serde_json::Value;

/// One step of a path. A field borrows its name from the document walked (no allocation per
/// node on the request path); paths built by hand own theirs.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg<'a> {
    /// A field of an object (or a key of a map).
    Field(Cow<'a, str>),
    /// An item of a keyed list, by its merge keys (field, value).
    Key(Vec<(String, Value)>),
    /// An item of a list by position.
    Index(usize),
}

impl Seg<'_> {
    /// The field name, for a field.
    pub fn field(&self) -> Option<&str> {
        match self {
            Seg::Field(f) => Some(f),
            _ => None,
        }
    }

    /// Whether this is a list item (by key or position).
    pub fn is_item(&self) -> bool {
        !matches!(self, Seg::Field(_))
    }
}

/// Renders a path in the syntax above.
pub fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Field(name) if is_bare(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Seg::Field(name) => {
                out.push('[');
                out.push_str(&Value::String(name.to_string()).to_string());
                out.push(']');
            }
            Seg::Key(keys) => {
                out.push('[');
                for (i, (field, value)) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(field);
                    out.push('=');
                    out.push_str(&key_value(value));
                }
                out.push(']');
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

fn is_bare(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn key_value(value: &Value) -> String {
    match value {
        Value::String(s)
            if !s.is_empty()
                && !s.chars().any(|c| {
                    matches!(c, '[' | ']' | '=' | ',' | '"' | '\\') || c.is_whitespace()
                }) =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// Whether a pattern element matches a segment: a field name, `a|b` for any of several names,
/// `*` for any field, `[]` for any list item.
fn element_matches(element: &str, seg: &Seg) -> bool {
    match element {
        "[]" => seg.is_item(),
        "*" => matches!(seg, Seg::Field(_)),
        names => match seg {
            Seg::Field(f) => names.split('|').any(|n| n == f),
            _ => false,
        },
    }
}

/// Whether `path` is exactly `pattern`.
pub fn is(path: &[Seg], pattern: &[&str]) -> bool {
    path.len() == pattern.len() && path.iter().zip(pattern).all(|(s, p)| element_matches(p, s))
}

/// Whether `path` ends with `pattern`.
pub fn ends_with(path: &[Seg], pattern: &[&str]) -> bool {
    path.len() >= pattern.len() && is(&path[path.len() - pattern.len()..], pattern)
}

/// The rest of `path` after `prefix`, when it starts with it.
pub fn strip<'p, 's>(path: &'p [Seg<'s>], prefix: &[&str]) -> Option<&'p [Seg<'s>]> {
    (path.len() >= prefix.len() && is(&path[..prefix.len()], prefix)).then(|| &path[prefix.len()..])
}

/// The value at `path` in `root`, following keyed items by their merge keys (a key the item
/// leaves out counts as its default, given by `default_of`).
pub fn resolve<'v>(
    root: &'v Value,
    path: &[Seg],
    default_of: &dyn Fn(&str) -> Option<Value>,
) -> Option<&'v Value> {
    let mut node = root;
    for seg in path {
        node = match seg {
            Seg::Field(f) => node.get(f.as_ref())?,
            Seg::Index(i) => node.get(i)?,
            Seg::Key(keys) => node.as_array()?.iter().find(|item| {
                keys.iter().all(|(k, v)| {
                    match item
                        .get(k)
                        .filter(|x| !x.is_null())
                        .cloned()
                        .or_else(|| default_of(k))
                    {
                        Some(x) => super::matching::same_value(&x, v),
                        None => false,
                    }
                })
            })?,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> Seg<'_> {
        Seg::Field(s.into())
    }

    #[test]
    fn renders() {
        let p = vec![
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            Seg::Key(vec![("name".into(), json!("web"))]),
            f("ports"),
            Seg::Key(vec![
                ("containerPort".into(), json!(9898)),
                ("protocol".into(), json!("TCP")),
            ]),
            f("protocol"),
        ];
        assert_eq!(
            render(&p),
            "spec.template.spec.containers[name=web].ports[containerPort=9898,protocol=TCP].protocol"
        );
        assert_eq!(
            render(&[f("metadata"), f("labels"), f("app.kubernetes.io/name")]),
            r#"metadata.labels["app.kubernetes.io/name"]"#
        );
        assert_eq!(
            render(&[f("spec"), f("tolerations"), Seg::Index(2)]),
            "spec.tolerations[2]"
        );
        assert_eq!(
            render(&[
                f("volumeMounts"),
                Seg::Key(vec![("mountPath".into(), json!("/a b"))])
            ]),
            r#"volumeMounts[mountPath="/a b"]"#
        );
        assert_eq!(
            render(&[
                f("volumeMounts"),
                Seg::Key(vec![(
                    "mountPath".into(),
                    json!("/var/run/secrets/kubernetes.io/serviceaccount")
                )])
            ]),
            "volumeMounts[mountPath=/var/run/secrets/kubernetes.io/serviceaccount]"
        );
        assert_eq!(render(&[f("data"), f("LOG_LEVEL")]), "data.LOG_LEVEL");
    }

    #[test]
    fn patterns() {
        let p = vec![f("spec"), f("containers"), Seg::Index(0), f("image")];
        assert!(is(
            &p,
            &["spec", "containers|initContainers", "[]", "image"]
        ));
        assert!(ends_with(&p, &["[]", "*"]));
        assert!(!ends_with(&p, &["*", "*"]));
        assert_eq!(strip(&p, &["spec"]).map(|r| r.len()), Some(3));
    }
}
