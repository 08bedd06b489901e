//! The built-in policy library (`policies/` in the repository), embedded in the binary so that
//! every command works with no configuration at all.

use include_dir::{Dir, include_dir};

use crate::policy::load::{SourceFile, load};
use crate::policy::{Options, PolicyError, PolicySet};

static POLICIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/policies");

/// Every embedded file, named `policies/<path>`, tests included.
pub fn files() -> Vec<SourceFile> {
    let mut out = Vec::new();
    collect(&POLICIES, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn collect(dir: &Dir<'static>, out: &mut Vec<SourceFile>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            out.push(SourceFile {
                path: format!("policies/{}", file.path().display()),
                text: text.to_string(),
            });
        }
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

/// The built-in policies, compiled.
pub fn policy_set(options: &Options) -> Result<PolicySet, PolicyError> {
    load(&files(), options)
}

/// The built-in `provenance` policy alone (loaded with provenance on even when
/// `policies.builtin` is false: `crate::setup::from_config`).
pub fn provenance_policy(options: &Options) -> Result<PolicySet, PolicyError> {
    let files: Vec<SourceFile> = files()
        .into_iter()
        .filter(|f| f.path == "policies/provenance.rego")
        .collect();
    load(&files, options)
}
