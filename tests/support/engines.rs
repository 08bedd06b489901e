//! The rendering engines the tests use, or a message saying which one is missing (the test
//! then skips): kustomize (`kustomize`, else `kubectl kustomize`) and helm (`helm`, else the
//! stand-in `helm_stand_in.py`, which renders with Helm's own engine from the PyPI package
//! helm-python-sdk; `.ci/run` installs it).

use std::path::PathBuf;
use std::process::Command;

fn on_path(name: &str) -> bool {
    gitgate::render::sandbox::which(name).is_some()
}

/// Whether kustomize can run (kustomize or kubectl on PATH); says why not.
pub fn kustomize() -> bool {
    if on_path("kustomize") || on_path("kubectl") {
        true
    } else {
        eprintln!(
            "skipping: neither kustomize nor kubectl is on PATH (.ci/run installs kubectl where it can)"
        );
        false
    }
}

/// The helm to render with: `helm` on PATH, else the stand-in when Python has
/// helm-python-sdk; `None` (with a message) when neither can run.
pub fn helm() -> Option<PathBuf> {
    if let Some(helm) = gitgate::render::sandbox::which("helm") {
        return Some(helm);
    }
    let has_sdk = Command::new("python3")
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_sdk {
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/helm_stand_in.py"))
    } else {
        eprintln!(
            "skipping: no helm binary on PATH and no helm-python-sdk for the stand-in (pip install helm-python-sdk)"
        );
        None
    }
}
