//! What Flux's source-controller leaves out of a repository's artifact, so that gitgate does
//! not render what the controller never sees: the `.sourceignore` files of the commit (at the
//! root and in any folder, gitignore syntax, each relative to its own folder) on top of
//! source-controller's defaults (version-control files, CI configurations, images and
//! archives). A `kustomization.yaml` listed in `.sourceignore` is not there for Flux, which
//! then applies its folder as plain manifests; gitgate reads it the same way.
//!
//! Matching is go-git's, as source-controller's archive walk applies it (it filters every
//! file, never skipping a folder): the last pattern that matches the path or one of its
//! folders decides, so a negated pattern re-includes a file under an excluded folder (git
//! would not). The defaults count only where there are no patterns of the repository's own
//! (no `.sourceignore`, no GitRepository `spec.ignore`): then only the version-control ones
//! stay (fluxcd/pkg's `SourceIgnoreFilter`). Patterns are parsed by gix's gitignore engine.

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::ignore::Search;
use gix::ignore::search::Ignore;

use crate::git::{GitError, Repo};

/// The name of the ignore files source-controller reads.
pub const FILE_NAME: &str = ".sourceignore";

/// source-controller's version-control exclusions (`pkg/sourceignore`: `VCSPatterns`),
/// always.
const VCS: &str = ".git/
.gitignore
.gitmodules
.gitattributes
";

/// source-controller's other default exclusions (`DefaultPatterns`), only where the
/// repository has no patterns of its own.
const DEFAULTS: &str = "*.jpg
*.jpeg
*.gif
*.png
*.wmv
*.flv
*.tar.gz
*.zip
.github/
.circleci/
.travis.yml
.gitlab-ci.yml
appveyor.yml
.drone.yml
cloudbuild.yaml
codeship-services.yml
codeship-steps.yml
**/.goreleaser.yml
**/.sops.yaml
**/.flux.yaml
";

/// Adds the patterns of the ignore file at `path` (from the repository's root): relative to
/// its own folder, as gitignore's are.
fn add(search: &mut Search, bytes: &[u8], path: &str) {
    // gix takes a pattern file's folder relative to a root: the repository's, written `/`.
    let source = std::path::PathBuf::from(format!("/{path}"));
    let _ = search.add_patterns_buffer(
        bytes,
        source,
        Some(std::path::Path::new("/")),
        Ignore::default(),
    );
}

/// The exclusions of one commit.
#[derive(Clone)]
pub struct Ignored {
    search: Search,
    /// The version-control patterns and the `.sourceignore` files' (no defaults): what
    /// patterns of a GitRepository's own are added to.
    own: Search,
    /// The `.sourceignore` files read (path, blob): what the exclusions depend on.
    pub files: Vec<(String, ObjectId)>,
}

/// A search holding the version-control patterns.
fn vcs() -> Search {
    let mut search = Search::default();
    // Adding patterns from a buffer cannot fail: the I/O error type is the signature's.
    let _ = search.add_patterns_buffer(VCS.as_bytes(), "<vcs>", None, Ignore::default());
    search
}

impl Ignored {
    /// The exclusions of `commit`: every `.sourceignore` of its tree, or where there is
    /// none, the defaults.
    pub fn of(repo: &Repo, commit: ObjectId) -> Result<Ignored, GitError> {
        let mut own = vcs();
        let files: Vec<(String, ObjectId)> = repo
            .files_where(commit, |path| {
                path == FILE_NAME || path.ends_with(&format!("/{FILE_NAME}"))
            })?
            .into_iter()
            .collect();
        for (path, blob) in &files {
            let bytes = repo.read_blob(*blob, path)?;
            add(&mut own, &bytes, path);
        }
        Ok(Ignored::from_own(own, files))
    }

    /// The exclusions of `own` patterns (the version-control ones first): the defaults are
    /// added where `files` names no ignore file.
    fn from_own(own: Search, files: Vec<(String, ObjectId)>) -> Ignored {
        let mut search = own.clone();
        if files.is_empty() {
            let _ = search.add_patterns_buffer(
                DEFAULTS.as_bytes(),
                "<defaults>",
                None,
                Ignore::default(),
            );
        }
        Ignored { search, own, files }
    }

    /// These exclusions and then `patterns` (a GitRepository's `spec.ignore`: relative to the
    /// repository's root, read after every `.sourceignore`, so the last word).
    /// (Patterns of its own: the defaults no longer count.)
    pub fn with_patterns(&self, patterns: &str) -> Ignored {
        let mut search = self.own.clone();
        add(&mut search, patterns.as_bytes(), FILE_NAME);
        Ignored {
            own: search.clone(),
            search,
            files: self.files.clone(),
        }
    }

    /// No exclusions at all (a controller that reads the repository as it is: Argo CD).
    pub fn nothing() -> Ignored {
        Ignored {
            search: Search::default(),
            own: Search::default(),
            files: Vec::new(),
        }
    }

    /// Whether source-controller leaves `path` (relative to the repository's root) out: of
    /// the patterns that match the path or one of its folders, the last one is not negated.
    pub fn ignores(&self, path: &str) -> bool {
        let case = gix::glob::pattern::Case::Sensitive;
        let path = path.trim_end_matches('/');
        // Each folder of the path, then the path itself.
        let prefixes: Vec<(&str, bool)> = path
            .match_indices('/')
            .map(|(at, _)| (&path[..at], true))
            .chain(std::iter::once((path, false)))
            .filter(|(p, _)| !p.is_empty())
            .collect();
        // Later lists (later files, then `spec.ignore`) come after earlier ones; within one,
        // later lines after earlier ones.
        for list in self.search.patterns.iter().rev() {
            let mut last: Option<(usize, bool)> = None;
            for (prefix, is_dir) in &prefixes {
                let basename = prefix.rfind('/').map(|p| p + 1);
                if let Some(m) = gix::ignore::search::pattern_matching_relative_path(
                    list,
                    prefix.as_bytes().as_bstr(),
                    basename,
                    Some(*is_dir),
                    case,
                ) && last.is_none_or(|(seq, _)| m.sequence_number > seq)
                {
                    last = Some((m.sequence_number, m.pattern.is_negative()));
                }
            }
            if let Some((_, negative)) = last {
                return !negative;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exclusions of `.sourceignore` files (folder, text), as [`Ignored::of`] makes them.
    fn with(patterns: &[(&str, &str)]) -> Ignored {
        let mut own = vcs();
        let mut files = Vec::new();
        for (dir, text) in patterns {
            let path = if dir.is_empty() {
                FILE_NAME.to_string()
            } else {
                format!("{dir}/{FILE_NAME}")
            };
            add(&mut own, text.as_bytes(), &path);
            files.push((path, ObjectId::null(gix::hash::Kind::Sha1)));
        }
        Ignored::from_own(own, files)
    }

    #[test]
    fn patterns_as_source_controller_reads_them() {
        let ignored = with(&[(
            "",
            "apps/prod/kustomization.yaml\n*.md\ndocs/\n!docs/keep.yaml\n",
        )]);
        assert!(ignored.ignores("apps/prod/kustomization.yaml"));
        assert!(!ignored.ignores("apps/prod/pod.yaml"));
        assert!(ignored.ignores("README.md"));
        assert!(ignored.ignores("docs/example/kustomization.yaml"));
        // go-git, file by file: a later negation re-includes a file under an excluded folder
        // (git itself would not; source-controller's archive walk does).
        assert!(!ignored.ignores("docs/keep.yaml"));
        assert!(ignored.ignores(".git/config"));
        // With a .sourceignore of the repository's own, the other defaults no longer count.
        assert!(!ignored.ignores(".github/workflows/ci.yaml"));
        assert!(!ignored.ignores("apps/.sops.yaml"));
        assert!(!ignored.ignores("apps/cloudbuild.yaml"));
        assert!(!ignored.ignores("apps/base/deploy.yaml"));
        // Without one, they do.
        let defaults = with(&[]);
        assert!(defaults.ignores(".github/workflows/ci.yaml"));
        assert!(defaults.ignores("apps/.sops.yaml"));
        assert!(defaults.ignores("apps/cloudbuild.yaml"));
        assert!(!defaults.ignores("apps/base/deploy.yaml"));
    }

    #[test]
    fn a_git_repositorys_own_patterns_come_last() {
        let ignored = with(&[("", "apps/web/kustomization.yaml\n")]);
        let more = ignored.with_patterns("# all but deploy/\n/*\n!/deploy/\n");
        assert!(more.ignores("apps/web/deploy.yaml"));
        assert!(!more.ignores("deploy/web.yaml"));
        // Patterns of the GitRepository's own: the defaults no longer count (a repository
        // with a .sourceignore had none already).
        assert!(!more.ignores("deploy/logo.png"));
        assert!(!with(&[]).with_patterns("/x\n").ignores("deploy/logo.png"));
        assert!(with(&[]).ignores("deploy/logo.png"));
        let back = ignored.with_patterns("!apps/web/kustomization.yaml\n");
        assert!(!back.ignores("apps/web/kustomization.yaml"));
        assert!(ignored.ignores("apps/web/kustomization.yaml"));
        assert!(!Ignored::nothing().ignores(".github/workflows/ci.yaml"));
    }

    #[test]
    fn a_folders_sourceignore_applies_below_it() {
        let ignored = with(&[("apps", "secret.yaml\n")]);
        assert!(ignored.ignores("apps/secret.yaml"));
        assert!(ignored.ignores("apps/prod/secret.yaml"));
        assert!(!ignored.ignores("secret.yaml"));
    }
}
