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
    /// An item of a keyed list, by its merge keys (field, value), borrowed from the item
    /// walked where it can be.
    Key(Vec<(Cow<'a, str>, Cow<'a, Value>)>),
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

/// A pattern of paths in the syntax above, as `provenance.mutations` writes them: it names a
/// field, a list item, or a whole subtree (everything below a path is covered by it).
///
/// - A field name may hold `*`, matching any run of characters (`metadata.annotations["sidecar.istio.io/*"]`),
///   and a segment that is only `*` matches any field (`spec.*.replicas`).
/// - `[*]` is any item of a list; `[3]` the item at that position; `[name=istio-proxy]` the item
///   of a keyed list with that merge key (values may hold `*` too; a key the pattern leaves out,
///   such as a port's `protocol`, matches any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segs: Vec<PatternSeg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSeg {
    Field(String),
    AnyItem,
    Index(usize),
    Key(Vec<(String, String)>),
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong, in words for a configuration error.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let mut segs = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("an empty path".into());
        }
        let mut first = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let (inside, tail) = split_bracket(after)
                    .ok_or_else(|| format!("{text:?}: a `[` without its `]`"))?;
                segs.push(parse_item(inside).map_err(|e| format!("{text:?}: {e}"))?);
                rest = tail;
            } else {
                if !first {
                    rest = rest
                        .strip_prefix('.')
                        .ok_or_else(|| format!("{text:?}: expected `.` or `[` before {rest:?}"))?;
                }
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                let name = &rest[..end];
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'*')
                {
                    return Err(format!(
                        "{text:?}: {name:?} is not a field name (write names with dots or slashes as [\"a.b/c\"])"
                    ));
                }
                segs.push(PatternSeg::Field(name.to_string()));
                rest = &rest[end..];
            }
            first = false;
        }
        Ok(Pattern { segs })
    }

    /// Whether `path` is the path this pattern names or lies below it.
    pub fn covers(&self, path: &[Seg]) -> bool {
        path.len() >= self.segs.len()
            && self.segs.iter().zip(path).all(|(p, s)| match (p, s) {
                (PatternSeg::Field(glob), Seg::Field(name)) => glob_match(glob, name),
                (PatternSeg::AnyItem, Seg::Key(_) | Seg::Index(_)) => true,
                (PatternSeg::Index(i), Seg::Index(j)) => i == j,
                (PatternSeg::Key(want), Seg::Key(keys)) => want.iter().all(|(field, glob)| {
                    keys.iter()
                        .any(|(f, v)| f == field && glob_match(glob, &key_text(v)))
                }),
                _ => false,
            })
    }
}

/// The text inside `[...]` (JSON strings may hold `]`) and what follows the `]`.
fn split_bracket(s: &str) -> Option<(&str, &str)> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

fn parse_item(inside: &str) -> Result<PatternSeg, String> {
    let inside = inside.trim();
    if inside == "*" {
        return Ok(PatternSeg::AnyItem);
    }
    if let Ok(i) = inside.parse::<usize>() {
        return Ok(PatternSeg::Index(i));
    }
    if inside.starts_with('"') {
        let name: String =
            serde_json::from_str(inside).map_err(|_| format!("{inside} is not a JSON string"))?;
        return Ok(PatternSeg::Field(name));
    }
    let mut keys = Vec::new();
    for pair in split_pairs(inside) {
        let (field, value) = pair.split_once('=').ok_or_else(|| {
            format!("[{inside}]: expected *, a position, a \"field\" or key=value")
        })?;
        let value = value.trim();
        let value = if value.starts_with('"') {
            serde_json::from_str::<String>(value)
                .map_err(|_| format!("{value} is not a JSON string"))?
        } else {
            value.to_string()
        };
        keys.push((field.trim().to_string(), value));
    }
    Ok(PatternSeg::Key(keys))
}

/// `a=1,b="x,y"` → `a=1`, `b="x,y"`.
fn split_pairs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut in_string, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ',' if !in_string => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A merge-key value as a pattern compares it: strings as they are, anything else as JSON.
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
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
                        .get(k.as_ref())
                        .filter(|x| !x.is_null())
                        .cloned()
                        .or_else(|| default_of(k))
                    {
                        Some(x) => super::value::same_value(&x, v),
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

    fn key(fields: &[(&'static str, Value)]) -> Seg<'static> {
        Seg::Key(
            fields
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Owned(v.clone())))
                .collect(),
        )
    }

    #[test]
    fn renders() {
        let p = vec![
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            key(&[("name", json!("web"))]),
            f("ports"),
            key(&[("containerPort", json!(9898)), ("protocol", json!("TCP"))]),
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
            render(&[f("volumeMounts"), key(&[("mountPath", json!("/a b"))])]),
            r#"volumeMounts[mountPath="/a b"]"#
        );
        assert_eq!(
            render(&[
                f("volumeMounts"),
                key(&[(
                    "mountPath",
                    json!("/var/run/secrets/kubernetes.io/serviceaccount")
                )])
            ]),
            "volumeMounts[mountPath=/var/run/secrets/kubernetes.io/serviceaccount]"
        );
        assert_eq!(render(&[f("data"), f("LOG_LEVEL")]), "data.LOG_LEVEL");
    }

    #[test]
    fn mutation_patterns() {
        let one = |k: &'static str, v: Value| key(&[(k, v)]);
        let sidecar = Pattern::parse("spec.containers[name=istio-proxy]").unwrap();
        let path = vec![
            f("spec"),
            f("containers"),
            one("name", json!("istio-proxy")),
            f("image"),
        ];
        assert!(sidecar.covers(&path));
        assert!(sidecar.covers(&path[..3]));
        assert!(!sidecar.covers(&path[..2]));
        let other = vec![f("spec"), f("containers"), one("name", json!("web"))];
        assert!(!sidecar.covers(&other));
        let annotation = Pattern::parse(r#"metadata.annotations["sidecar.istio.io/*"]"#).unwrap();
        assert!(annotation.covers(&[
            f("metadata"),
            f("annotations"),
            f("sidecar.istio.io/status")
        ]));
        assert!(!annotation.covers(&[f("metadata"), f("annotations"), f("evil.io/status")]));
        let any = Pattern::parse("spec.template.spec.containers[*].resources").unwrap();
        assert!(any.covers(&[
            f("spec"),
            f("template"),
            f("spec"),
            f("containers"),
            one("name", json!("a")),
            f("resources"),
            f("limits")
        ]));
        let port = Pattern::parse("spec.ports[port=8080]").unwrap();
        let p = vec![
            f("spec"),
            f("ports"),
            key(&[("port", json!(8080)), ("protocol", json!("TCP"))]),
        ];
        assert!(port.covers(&p));
        for bad in [
            "",
            "spec..x",
            "spec[",
            "spec.a b",
            "spec[x]",
            "metadata.labels.a/b",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        assert!(glob_match("a*c*e", "abcde") && !glob_match("a*c", "ab") && glob_match("*", ""));
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
