//! Repository paths as the renders see them: `/`-separated, relative to the repository's
//! root, with `.` and `..` resolved lexically (a symbolic link in Git is never followed: see
//! [`super::sandbox`]).

/// `dir` joined with `rel` and normalized, or `None` when the result leaves the repository
/// (too many `..`) or `rel` is absolute.
pub fn join(dir: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') || rel.starts_with('\\') {
        return None;
    }
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The repository path of a source folder as configured (`""` for the root; `./a/` → `a`).
pub fn clean(path: &str) -> String {
    join("", path).unwrap_or_else(|| path.to_string())
}

/// Whether `path` is `dir` or under it (`""` holds everything).
pub fn under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `dir/name`, or `name` at the root.
pub fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The folder of a path (`""` at the root).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// How a folder is named in messages: `.` for the root.
pub fn display(dir: &str) -> &str {
    if dir.is_empty() { "." } else { dir }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_inside_the_repository() {
        assert_eq!(
            join("apps/prod", "../base/web").as_deref(),
            Some("apps/base/web")
        );
        assert_eq!(join("apps", "./x.yaml").as_deref(), Some("apps/x.yaml"));
        assert_eq!(join("apps", "../..").as_deref(), None);
        assert_eq!(join("apps", "..").as_deref(), Some(""));
        assert_eq!(join("", "/etc/passwd"), None);
        assert_eq!(clean("./apps/"), "apps");
        assert!(under("apps/a.yaml", "apps") && !under("apps2/a.yaml", "apps"));
        assert!(under("x", ""));
        assert_eq!(parent("a/b/c.yaml"), "a/b");
        assert_eq!(parent("c.yaml"), "");
    }
}
