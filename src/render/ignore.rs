//! What Flux's source-controller leaves out of a repository's artifact, so that gitgate does
//! not render what the controller never sees: the `.sourceignore` files of the commit (at the
//! root and in any folder, gitignore syntax, each relative to its own folder) on top of
//! source-controller's defaults (version-control files, CI configurations, images and
//! archives). A `kustomization.yaml` listed in `.sourceignore` is not there for Flux, which
//! then applies its folder as plain manifests; gitgate reads it the same way.
//!
//! Matching is git's (gix's gitignore engine): the last pattern that matches decides, a
//! negated pattern re-includes, and a file under an ignored folder stays ignored.

use gix::ObjectId;
use gix::bstr::ByteSlice;
use gix::ignore::Search;
use gix::ignore::search::Ignore;

use crate::git::{GitError, Repo};

/// The name of the ignore files source-controller reads.
pub const FILE_NAME: &str = ".sourceignore";

/// source-controller's default exclusions (`pkg/sourceignore`: `VCSPatterns` and
/// `DefaultPatterns`).
const DEFAULTS: &str = ".git/
.gitignore
.gitmodules
.gitattributes
*.jpg
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
pub struct Ignored {
    search: Search,
    /// The `.sourceignore` files read (path, blob): what the exclusions depend on.
    pub files: Vec<(String, ObjectId)>,
}

impl Ignored {
    /// The exclusions of `commit`: the defaults and every `.sourceignore` of its tree.
    pub fn of(repo: &Repo, commit: ObjectId) -> Result<Ignored, GitError> {
        let mut search = Search::default();
        // Adding patterns from a buffer cannot fail: the I/O error type is the signature's.
        let _ =
            search.add_patterns_buffer(DEFAULTS.as_bytes(), "<defaults>", None, Ignore::default());
        let files: Vec<(String, ObjectId)> = repo
            .files_where(commit, |path| {
                path == FILE_NAME || path.ends_with(&format!("/{FILE_NAME}"))
            })?
            .into_iter()
            .collect();
        for (path, blob) in &files {
            let bytes = repo.read_blob(*blob, path)?;
            add(&mut search, &bytes, path);
        }
        Ok(Ignored { search, files })
    }

    /// These exclusions and then `patterns` (a GitRepository's `spec.ignore`: relative to the
    /// repository's root, read after every `.sourceignore`, so the last word).
    pub fn with_patterns(&self, patterns: &str) -> Ignored {
        let mut search = self.search.clone();
        add(&mut search, patterns.as_bytes(), FILE_NAME);
        Ignored {
            search,
            files: self.files.clone(),
        }
    }

    /// No exclusions at all (a controller that reads the repository as it is: Argo CD).
    pub fn nothing() -> Ignored {
        Ignored {
            search: Search::default(),
            files: Vec::new(),
        }
    }

    /// Whether source-controller leaves `path` (relative to the repository's root) out: the
    /// path or one of its folders is matched by a pattern that is not negated.
    pub fn ignores(&self, path: &str) -> bool {
        let case = gix::glob::pattern::Case::Sensitive;
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let is_dir = prefix.len() < path.trim_end_matches('/').len();
            if let Some(m) = self.search.pattern_matching_relative_path(
                prefix.as_bytes().as_bstr(),
                Some(is_dir),
                case,
            ) && !m.pattern.is_negative()
            {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(patterns: &[(&str, &str)]) -> Ignored {
        let mut search = Search::default();
        let _ =
            search.add_patterns_buffer(DEFAULTS.as_bytes(), "<defaults>", None, Ignore::default());
        for (dir, text) in patterns {
            let path = if dir.is_empty() {
                FILE_NAME.to_string()
            } else {
                format!("{dir}/{FILE_NAME}")
            };
            add(&mut search, text.as_bytes(), &path);
        }
        Ignored {
            search,
            files: Vec::new(),
        }
    }

    #[test]
    fn patterns_as_git_reads_them() {
        let ignored = with(&[(
            "",
            "apps/prod/kustomization.yaml\n*.md\ndocs/\n!docs/keep.yaml\n",
        )]);
        assert!(ignored.ignores("apps/prod/kustomization.yaml"));
        assert!(!ignored.ignores("apps/prod/pod.yaml"));
        assert!(ignored.ignores("README.md"));
        assert!(ignored.ignores("docs/example/kustomization.yaml"));
        // A file under an ignored folder stays ignored (git cannot re-include it).
        assert!(ignored.ignores("docs/keep.yaml"));
        assert!(ignored.ignores(".github/workflows/ci.yaml"));
        assert!(ignored.ignores("apps/.sops.yaml"));
        assert!(!ignored.ignores("apps/base/deploy.yaml"));
    }

    #[test]
    fn a_git_repositorys_own_patterns_come_last() {
        let ignored = with(&[("", "apps/web/kustomization.yaml\n")]);
        let more = ignored.with_patterns("# all but deploy/\n/*\n!/deploy/\n");
        assert!(more.ignores("apps/web/deploy.yaml"));
        assert!(!more.ignores("deploy/web.yaml"));
        // The defaults and the .sourceignore files still count below what is re-included.
        assert!(more.ignores("deploy/logo.png"));
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
