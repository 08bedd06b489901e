//! The gate `check` applies to a pull request comes from the protected branch, not from the
//! pull request: `gitgate.yaml` and the configured policy directories are read from the tree
//! of the merge base, so a pull request that turns policies off (`policies: {builtin: false}`)
//! next to a `:latest` image is still judged by the policies it would remove.
//!
//! A pull request that changes the gate is reported (a warning naming the files: the change
//! applies once merged, after review), and the head's configuration and policies are checked
//! so that a broken gate is caught before it lands. `--trust-head` keeps reading the gate from
//! the working tree, for repositories that want it.
//!
//! A configuration file or `--policy` directory outside the repository (`-c /etc/gitgate.yaml`)
//! is the CI job's own choice and is read from disk; `--policy ./policy` inside it is the pull
//! request's copy, and is read from the base like the configured paths.

use std::path::{Component, Path, PathBuf};

use gix::ObjectId;

use super::{CheckError, Item, Level};
use crate::config::Config;
use crate::git::{Files, Repo};
use crate::policy::load::SourceFile;
use crate::policy::rego::RegoVersion;
use crate::policy::{PolicyError, PolicySet};
use crate::setup::from_config_read;

/// The range a pull request spans, in its repository.
struct Range<'a> {
    repo: &'a Repo,
    base: ObjectId,
    head: ObjectId,
    /// The protected branch the base was found on.
    branch: &'a str,
}

/// The gate as the base holds it: where its configuration is and what it says.
struct GateFiles<'a> {
    /// The configuration's path from the repository's root.
    config_rel: &'a str,
    config: &'a Config,
    /// Where its relative policy paths start.
    config_dir: &'a Path,
}

/// What a range is judged by.
pub struct Gate {
    pub config: Config,
    pub policies: PolicySet,
    /// The merge base the gate was read from: the range starts there.
    pub base: ObjectId,
    /// The head of the range, as the gate resolved it.
    pub head: ObjectId,
    /// Findings about the gate itself: the pull request changes it, or breaks it.
    pub items: Vec<Item>,
}

/// Where the gate is looked for.
pub struct Options<'a> {
    pub repo: &'a Path,
    /// `-c FILE`; default `<repo>/gitgate.yaml`.
    pub config_file: Option<&'a Path>,
    pub base: Option<&'a str>,
    pub head: Option<&'a str>,
    /// `--policy` directories, instead of the configured ones (from the base when inside the
    /// repository, from disk when outside).
    pub policy_override: &'a [PathBuf],
    pub rego_version: RegoVersion,
}

/// Where the configuration file is: inside the repository (read from commits, by its path
/// from the root) or outside (read from disk).
enum Location {
    InRepo(String),
    OnDisk(PathBuf),
}

/// Reads the gate of a range from its merge base.
pub fn from_base(options: &Options<'_>) -> Result<Gate, CheckError> {
    let repo = Repo::open(options.repo)?;
    let head_rev = options.head.unwrap_or("HEAD");
    let head = repo
        .resolve(head_rev)
        .map_err(|e| e.named(format!("--head {head_rev}")))?;
    let location = locate(&repo, options)?;
    let head_text = read_config_text(&repo, &location, head)?;
    // The branch to fork from. Never the pull request's word when anything else names it: a
    // pull request that sets `repository.branch` to a branch of its own (pushed next to it,
    // holding a gate with the policies off) would otherwise choose the commit its gate is
    // read from. A configuration outside the repository is the CI job's own; otherwise the
    // remote's default branch (`origin/HEAD`), then `main`; the base's configuration then
    // decides (followed once, should it name another branch).
    let head_config = head_text
        .as_ref()
        .and_then(|(name, text)| Config::parse(name, text).ok())
        .unwrap_or_default();
    let trusted = match &location {
        Location::OnDisk(_) => Some(head_config.repository.branch.clone()),
        Location::InRepo(_) => trusted_branch(&repo),
    };
    let named_by_head = options.base.is_none() && trusted.is_none();
    let mut branch = trusted.unwrap_or_else(|| head_config.repository.branch.clone());
    let (mut base, mut config) = read_at_base(&repo, &location, options, &branch, head)?;
    // Followed only from a commit the pull request did not make: when the branch holds the
    // head, the configuration read is the pull request's own (and the range is empty).
    if options.base.is_none() && base != head && config.repository.branch != branch {
        branch = config.repository.branch.clone();
        (base, config) = read_at_base(&repo, &location, options, &branch, head)?;
    }
    let config_dir = match &location {
        Location::InRepo(rel) => parent(rel),
        Location::OnDisk(path) => path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let policies = load_policies(&repo, &location, &config, &config_dir, base, options)
        .map_err(|e| CheckError::Gate(format!("the gate at {} ({branch}): {e}", short(base))))?;
    let mut items = Vec::new();
    if named_by_head && let Location::InRepo(rel) = &location {
        items.push(gate_item(
            rel,
            Level::Warning,
            format!(
                "the protected branch ({branch}) is named by the pull request's own {rel}: this clone has neither origin/HEAD nor a branch main to take it from; name it with --base (for example --base origin/{branch})"
            ),
        ));
    }
    if let Location::InRepo(rel) = &location {
        let range = Range {
            repo: &repo,
            base,
            head,
            branch: &branch,
        };
        let at_base = GateFiles {
            config_rel: rel,
            config: &config,
            config_dir: &config_dir,
        };
        items.extend(changes_to_gate(
            &range,
            &at_base,
            head_text.as_ref().map(|(_, t)| t.as_str()),
            options,
        )?);
    }
    Ok(Gate {
        config,
        policies,
        base,
        head,
        items,
    })
}

/// The branch to look for the protected branch's configuration from, named by the clone
/// rather than by the pull request: the remote's default branch (`origin/HEAD`), else `main`
/// (the configuration's default), when it is here.
fn trusted_branch(repo: &Repo) -> Option<String> {
    if let Some(branch) = repo.remote_default_branch()
        && repo.protected_branch(&branch).is_ok()
    {
        return Some(branch);
    }
    let default = Config::default().repository.branch;
    repo.protected_branch(&default).is_ok().then_some(default)
}

/// The merge base of `head` with `--base` or the protected branch, and the configuration
/// there (the default when the base holds none).
fn read_at_base(
    repo: &Repo,
    location: &Location,
    options: &Options<'_>,
    branch: &str,
    head: ObjectId,
) -> Result<(ObjectId, Config), CheckError> {
    let base = match options.base {
        Some(rev) => repo.merge_base(
            repo.resolve(rev)
                .map_err(|e| e.named(format!("--base {rev}")))?,
            head,
        )?,
        None => repo.merge_base(repo.protected_branch(branch)?, head)?,
    };
    let config = match read_config_text(repo, location, base)? {
        Some((name, text)) => Config::parse(&name, &text).map_err(|e| {
            CheckError::Gate(format!(
                "the configuration of the protected branch ({branch} at {}) is invalid: {e}",
                short(base)
            ))
        })?,
        // No configuration on the protected branch: the defaults, unless one was named.
        None => match (location, options.config_file) {
            (Location::InRepo(rel), Some(_)) => {
                return Err(CheckError::Gate(format!(
                    "{rel} is not on the protected branch ({branch} at {}): the gate is read from there, not from the pull request; merge it first, or pass --trust-head to read it from the working tree",
                    short(base)
                )));
            }
            _ => Config::default(),
        },
    };
    Ok((base, config))
}

/// The configuration's text at `commit` (in the repository) or on disk, named for errors.
fn read_config_text(
    repo: &Repo,
    location: &Location,
    commit: ObjectId,
) -> Result<Option<(String, String)>, CheckError> {
    match location {
        Location::OnDisk(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some((path.display().to_string(), text))),
            Err(source) => Err(CheckError::Io {
                path: path.display().to_string(),
                source,
            }),
        },
        Location::InRepo(rel) => {
            let files = repo.files_where(commit, |p| p == rel)?;
            match files.get(rel) {
                None => Ok(None),
                Some(id) => {
                    let bytes = repo.read_blob(*id, rel)?;
                    let text = String::from_utf8(bytes).map_err(|_| {
                        CheckError::Gate(format!("{rel} at {}: not UTF-8 text", short(commit)))
                    })?;
                    Ok(Some((format!("{rel} (at {})", short(commit)), text)))
                }
            }
        }
    }
}

/// Where `-c FILE` (or `<repo>/gitgate.yaml`) is, relative to the repository's root.
fn locate(repo: &Repo, options: &Options<'_>) -> Result<Location, CheckError> {
    let Some(root) = repo.workdir().and_then(|w| w.canonicalize().ok()) else {
        // A bare repository: the configuration can only come from its commits.
        return Ok(Location::InRepo(
            options
                .config_file
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "gitgate.yaml".into()),
        ));
    };
    let wanted = match options.config_file {
        Some(file) => file.to_path_buf(),
        None => options.repo.join("gitgate.yaml"),
    };
    // The file is read from the protected branch by its path in the repository, and that
    // path must not depend on the pull request: a directory of the working tree that the
    // pull request made a symlink (`ci/prod -> staging`) would otherwise choose which
    // configuration of the protected branch judges it.
    if let Some(link) = symlink_in_worktree(&wanted, &root) {
        return Err(CheckError::Gate(format!(
            "{}: the path goes through {}, a symlink in the working tree (which the pull request can change); name the configuration by its real path",
            wanted.display(),
            link.display()
        )));
    }
    // The file need not exist in the working tree (it may exist only at the base).
    let absolute = match wanted.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    }) {
        Some(dir) => match dir.canonicalize() {
            Ok(dir) => dir.join(wanted.file_name().unwrap_or_default()),
            Err(_) if options.config_file.is_some() => {
                return Err(CheckError::Io {
                    path: wanted.display().to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
                });
            }
            Err(_) => return Ok(Location::InRepo("gitgate.yaml".into())),
        },
        None => wanted.clone(),
    };
    match absolute.strip_prefix(&root) {
        Ok(rel) => Ok(Location::InRepo(slash_path(rel))),
        Err(_) => Ok(Location::OnDisk(wanted)),
    }
}

/// The first directory on the way to `file` that is a symlink inside the work tree `root`
/// (symlinks outside it, such as a `--repo` given through a link, are the CI job's own).
fn symlink_in_worktree(file: &Path, root: &Path) -> Option<PathBuf> {
    let lexical = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(file)
    };
    let mut at = PathBuf::new();
    for component in lexical.parent()?.components() {
        at.push(component);
        let is_link = std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink());
        let inside = at
            .parent()
            .and_then(|dir| dir.canonicalize().ok())
            .is_some_and(|dir| dir.starts_with(root));
        if is_link && inside {
            return Some(at);
        }
    }
    None
}

/// The policy set of the configuration: built-in, `--policy` from disk, configured paths
/// from the commit (or from disk, for a configuration outside the repository).
fn load_policies(
    repo: &Repo,
    location: &Location,
    config: &Config,
    config_dir: &Path,
    commit: ObjectId,
    options: &Options<'_>,
) -> Result<PolicySet, PolicyError> {
    // `--policy DIR` inside the work tree is the pull request's copy: it is read from the
    // base like the configured paths (`-p ./policy` in a CI job must not let the pull request
    // rewrite the policies); one outside the repository is the job's own, read from disk.
    let root = repo.workdir().and_then(|w| w.canonicalize().ok());
    let cwd = std::env::current_dir()
        .and_then(|d| d.canonicalize())
        .unwrap_or_default();
    let in_repo = |path: &Path| -> Option<PathBuf> {
        let absolute = cwd.join(path);
        let rel = Path::new(&normalize_absolute(&absolute))
            .strip_prefix(root.as_ref()?)
            .ok()?
            .to_path_buf();
        Some(rel)
    };
    let overrides: Vec<PathBuf> = options
        .policy_override
        .iter()
        .map(|p| cwd.join(p))
        .collect();
    // A relative path is the repository's (a configured path of a configuration in it); an
    // absolute one is looked up in the repository when it lies inside, else read from disk.
    let read = |paths: &[PathBuf]| -> Result<Vec<SourceFile>, PolicyError> {
        let (tree, disk): (Vec<PathBuf>, Vec<PathBuf>) = paths
            .iter()
            .map(|p| match p.is_absolute() {
                true => in_repo(p).unwrap_or_else(|| p.clone()),
                false => p.clone(),
            })
            .partition(|p| p.is_relative());
        let mut files = crate::policy::load::read_paths(&disk)?;
        files.extend(read_tree_paths(repo, commit, &tree)?);
        Ok(files)
    };
    // A configuration outside the repository names its directories from its own (on disk).
    let base_dir = match location {
        Location::OnDisk(_) => cwd.join(config_dir),
        Location::InRepo(_) => config_dir.to_path_buf(),
    };
    from_config_read(config, &base_dir, &overrides, options.rego_version, read)
}

/// `/a/./b/../c` → `/a/c`, lexically (a path the pull request made a symlink is then looked
/// up in the base's tree by its name, never followed on disk).
fn normalize_absolute(path: &Path) -> String {
    format!("/{}", normalize(path))
}

/// The policy files under `paths` (from the repository's root) in `commit`'s tree; a path
/// that holds nothing there is an error.
fn read_tree_paths(
    repo: &Repo,
    commit: ObjectId,
    paths: &[PathBuf],
) -> Result<Vec<SourceFile>, PolicyError> {
    let git = |e: crate::git::GitError| PolicyError::Gate(e.to_string());
    let mut out = Vec::new();
    for path in paths {
        let prefix = normalize(path);
        let files = policy_files(repo, commit, &prefix).map_err(git)?;
        if files.is_empty() {
            return Err(PolicyError::Gate(format!(
                "{}: no policy file there at {} (policies are read from the protected branch; merge them first, or pass --trust-head)",
                path.display(),
                short(commit)
            )));
        }
        for (file, id) in files {
            let bytes = repo.read_blob(id, &file).map_err(git)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| PolicyError::Gate(format!("{file}: not UTF-8 text")))?;
            out.push(SourceFile { path: file, text });
        }
    }
    Ok(out)
}

/// The policy files (`.rego`, `.yaml`, `.yml`, `.json`) at or under `prefix`.
fn policy_files(
    repo: &Repo,
    commit: ObjectId,
    prefix: &str,
) -> Result<Files, crate::git::GitError> {
    repo.files_where(commit, |p| {
        let inside = prefix.is_empty() || p == prefix || p.starts_with(&format!("{prefix}/"));
        let hidden = p.split('/').any(|c| c.starts_with('.'));
        inside
            && !hidden
            && [".rego", ".yaml", ".yml", ".json"]
                .iter()
                .any(|ext| p.ends_with(ext))
    })
}

/// What the pull request does to the gate: a warning naming the changed files, and an error
/// when the head's configuration or policies do not load.
fn changes_to_gate(
    range: &Range<'_>,
    at_base: &GateFiles<'_>,
    head_text: Option<&str>,
    options: &Options<'_>,
) -> Result<Vec<Item>, CheckError> {
    let &Range {
        repo,
        base,
        head,
        branch,
    } = range;
    let &GateFiles {
        config_rel,
        config: base_config,
        config_dir,
    } = at_base;
    let mut items = Vec::new();
    let head_config = match head_text {
        None => Some(Config::default()),
        Some(text) => match Config::parse(&format!("{config_rel} (at {})", short(head)), text) {
            Ok(c) => Some(c),
            Err(e) => {
                items.push(gate_item(
                    config_rel,
                    Level::Error,
                    format!("this pull request breaks the gate: {e}"),
                ));
                None
            }
        },
    };
    // The files of the gate at either end: the configuration and both ends' policy paths.
    let mut prefixes: Vec<String> = base_config
        .policies
        .paths
        .iter()
        .map(|p| normalize(&config_dir.join(p)))
        .collect();
    if let Some(c) = &head_config {
        prefixes.extend(
            c.policies
                .paths
                .iter()
                .map(|p| normalize(&config_dir.join(p))),
        );
    }
    let gate_files = |commit| -> Result<Files, CheckError> {
        let mut files = repo.files_where(commit, |p| p == config_rel)?;
        for prefix in &prefixes {
            files.extend(policy_files(repo, commit, prefix)?);
        }
        Ok(files)
    };
    let (at_base, at_head) = (gate_files(base)?, gate_files(head)?);
    let mut changed: Vec<&String> = at_head
        .iter()
        .filter(|(p, id)| at_base.get(*p) != Some(id))
        .chain(at_base.iter().filter(|(p, _)| !at_head.contains_key(*p)))
        .map(|(p, _)| p)
        .collect();
    changed.sort();
    changed.dedup();
    if !changed.is_empty() {
        let list: Vec<&str> = changed.iter().map(|s| s.as_str()).collect();
        items.push(gate_item(
            changed[0],
            Level::Warning,
            format!(
                "this pull request changes the gate ({}): it is judged by the configuration and policies of {branch} at {}, and the change applies once merged",
                list.join(", "),
                short(base)
            ),
        ));
        // The head's policies must load, so that merging does not break every later check.
        if let Some(c) = &head_config {
            let loaded = from_config_read(
                c,
                config_dir,
                options.policy_override,
                options.rego_version,
                |paths| read_tree_paths(repo, head, paths),
            );
            if let Err(e) = loaded {
                items.push(gate_item(
                    changed[0],
                    Level::Error,
                    format!("this pull request breaks the gate: its policies do not load: {e}"),
                ));
            }
        }
    }
    Ok(items)
}

fn gate_item(path: &str, level: Level, message: String) -> Item {
    Item {
        path: path.to_string(),
        line: 1,
        level,
        policy: "gitgate".into(),
        message,
        operation: None,
        object: None,
        // A gate that does not load is a configuration error (exit 2), not a rejection.
        unchecked: level == Level::Error,
    }
}

fn short(id: ObjectId) -> String {
    id.to_hex_with_len(12).to_string()
}

/// The directory of a repository path (`""` for the root).
fn parent(rel: &str) -> PathBuf {
    Path::new(rel)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `a/./b/../c` → `a/c`, with `/` separators and no leading `./`.
fn normalize(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

fn slash_path(path: &Path) -> String {
    normalize(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize() {
        assert_eq!(normalize(Path::new("./policy")), "policy");
        assert_eq!(normalize(Path::new("ci/../policy/./x")), "policy/x");
        assert_eq!(normalize(Path::new("")), "");
    }
}
