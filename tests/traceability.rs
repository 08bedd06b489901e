//! The traceability verdict of the real AdmissionReview fixtures against a real repository
//! holding their manifests: traceable, modified, untraceable, exempt. Skips where the shared
//! fixtures or git are absent.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gitgate::config::Config;
use gitgate::git::Repo;
use gitgate::input::parse_admission_review;
use gitgate::provenance::approval::{Trust, Window, window};
use gitgate::provenance::index::Index;
use gitgate::provenance::verdict::{Status, judge};

/// A repository whose main branch holds the fixtures' manifests.
/// The fixtures, when they and git are here.
fn fixtures() -> Option<PathBuf> {
    let dir = support::fixtures_dir()?;
    if Command::new("git").arg("--version").output().is_ok() {
        Some(dir)
    } else {
        eprintln!("skipping: git is absent");
        None
    }
}

fn git(dir: &Path, args: &[&str], at: i64) -> String {
    support::git(dir, "a@example.com", at, args)
}

fn gitops_repo(fixtures: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"], 0);
    std::fs::create_dir(dir.path().join("demo")).unwrap();
    for f in ["deploy.yaml", "cm.yaml", "svc.yaml", "quant.yaml"] {
        std::fs::copy(
            fixtures.join("manifests").join(f),
            dir.path().join("demo").join(f),
        )
        .unwrap();
    }
    git(dir.path(), &["add", "-A"], 0);
    git(
        dir.path(),
        &["commit", "-q", "-m", "the demo app"],
        1_780_000_000,
    );
    dir
}

fn index_of(dir: &Path, rev: &str, commits: usize, trust: Option<&Trust>) -> Index {
    let repo = Repo::open(dir).unwrap();
    let tip = repo.resolve(rev).unwrap();
    let w = window(
        &repo,
        tip,
        Window {
            commits,
            max_age: Duration::from_secs(30 * 86_400),
        },
        trust,
    )
    .unwrap();
    Index::build(&repo, &w, &[], "default").unwrap()
}

fn verdict(fixtures: &Path, file: &str, index: &Index) -> gitgate::provenance::verdict::Verdict {
    let body = std::fs::read(fixtures.join(file)).unwrap();
    let (_, review) = parse_admission_review(file, &body).unwrap();
    judge(&review, index, &Config::default())
}

#[test]
fn fixtures_against_the_approved_manifests() {
    let Some(fx) = fixtures() else { return };
    let repo = gitops_repo(&fx);
    let index = index_of(repo.path(), "main", 20, None);
    let expect = |file: &str, status: Status| {
        let v = verdict(&fx, file, &index);
        assert_eq!(v.status, status, "{file}: {}", v.reason);
        v
    };
    let v = expect("004-create-deployments-web.json", Status::Traceable);
    assert_eq!(v.path.as_deref(), Some("demo/deploy.yaml"));
    assert!(v.unattested.is_empty(), "{:?}", v.unattested);
    expect("030-create-deployments-quant.json", Status::Traceable);
    expect("005-create-configmaps-web-config.json", Status::Traceable);
    expect("006-create-services-web.json", Status::Traceable);
    let v = expect("016-update-deployments-web.json", Status::Modified);
    assert!(
        v.differing.iter().any(|p| p.contains("image")),
        "{:?}",
        v.differing
    );
    let v = expect("015-update-deployments-scale-web.json", Status::Modified);
    assert!(
        v.differing.iter().any(|p| p.contains("replicas")),
        "{:?}",
        v.differing
    );
    let v = expect("018-update-deployments-web.json", Status::Modified);
    assert!(
        v.differing.iter().any(|p| p.contains("team")),
        "{:?}",
        v.differing
    );
    expect("019-update-configmaps-web-config.json", Status::Modified);
    let v = expect("020-delete-configmaps-web-config.json", Status::Untraceable);
    assert!(
        v.reason.contains("still in the newest approved commit"),
        "{}",
        v.reason
    );
    // Not in Git at all.
    expect(
        "022-create-serviceaccounts-default.json",
        Status::Untraceable,
    );
    // 027's pod is not in Git either.
    expect("027-create-pods-debug.json", Status::Untraceable);
}

#[test]
fn a_delete_is_traceable_once_git_removed_the_object() {
    let Some(fx) = fixtures() else { return };
    let repo = gitops_repo(&fx);
    std::fs::remove_file(repo.path().join("demo/deploy.yaml")).unwrap();
    git(
        repo.path(),
        &["commit", "-q", "-am", "remove web"],
        1_780_000_100,
    );
    let index = index_of(repo.path(), "main", 20, None);
    assert_eq!(
        verdict(&fx, "021-delete-deployments-web.json", &index).status,
        Status::Traceable
    );
    // An older commit of the window still holds it, but what a newer approved commit removed
    // is not created again (issue 17: a rollback is a revert in Git).
    let v = verdict(&fx, "004-create-deployments-web.json", &index);
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);
    assert!(v.reason.contains("removed it"), "{}", v.reason);
}

#[test]
fn outside_the_window_on_another_branch_or_unsigned_is_untraceable() {
    let Some(fx) = fixtures() else { return };
    let repo = gitops_repo(&fx);
    // Two newer commits: with a window of 2, the first commit (which alone holds quant.yaml's
    // original content after it changes) falls out.
    let quant = repo.path().join("demo/quant.yaml");
    let text = std::fs::read_to_string(&quant).unwrap();
    std::fs::write(
        &quant,
        text.replace("image: nginx:1.27", "image: nginx:1.28"),
    )
    .unwrap();
    git(
        repo.path(),
        &["commit", "-q", "-am", "nginx 1.28"],
        1_780_000_100,
    );
    std::fs::write(
        repo.path().join("demo/extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: demo}\n",
    )
    .unwrap();
    git(repo.path(), &["add", "-A"], 0);
    git(repo.path(), &["commit", "-q", "-m", "extra"], 1_780_000_200);
    let wide = index_of(repo.path(), "main", 20, None);
    assert_eq!(
        verdict(&fx, "030-create-deployments-quant.json", &wide).status,
        Status::Traceable
    );
    let narrow = index_of(repo.path(), "main", 2, None);
    let v = verdict(&fx, "030-create-deployments-quant.json", &narrow);
    assert_eq!(
        v.status,
        Status::Modified,
        "only the 1.28 version is in the window: {}",
        v.reason
    );

    // The same object only on a branch that was never merged.
    git(repo.path(), &["checkout", "-q", "-b", "feature"], 0);
    std::fs::copy(
        fx.join("manifests/widget.yaml"),
        repo.path().join("demo/widget.yaml"),
    )
    .unwrap();
    git(repo.path(), &["add", "-A"], 0);
    git(
        repo.path(),
        &["commit", "-q", "-m", "widget"],
        1_780_000_300,
    );
    let main = index_of(repo.path(), "main", 20, None);
    assert_eq!(
        verdict(&fx, "026-create-widgets-blue.json", &main).status,
        Status::Untraceable
    );
    let feature = index_of(repo.path(), "feature", 20, None);
    assert_eq!(
        verdict(&fx, "026-create-widgets-blue.json", &feature).status,
        Status::Traceable,
        "control: the branch does hold it"
    );

    // Signatures required, and no commit is signed: nothing is approved.
    let unsigned = index_of(repo.path(), "main", 20, Some(&Trust::default()));
    assert_eq!(
        verdict(&fx, "004-create-deployments-web.json", &unsigned).status,
        Status::Untraceable
    );
}

#[test]
fn exemptions_and_break_glass() {
    let Some(fx) = fixtures() else { return };
    let repo = gitops_repo(&fx);
    let index = index_of(repo.path(), "main", 20, None);
    let body = std::fs::read(fx.join("016-update-deployments-web.json")).unwrap();
    let (_, review) = parse_admission_review("016", &body).unwrap();
    let mut config = Config::default();
    config.exempt.namespaces.push("demo".into());
    assert_eq!(judge(&review, &index, &config).status, Status::Exempt);
    let mut config = Config::default();
    config.exempt.users.push("alice".into());
    assert_eq!(judge(&review, &index, &config).status, Status::Exempt);
    // Break-glass: alice in the configured group, with a reason annotation.
    let mut config = Config::default();
    config.break_glass.groups.push("developers".into());
    assert_eq!(
        judge(&review, &index, &config).status,
        Status::Modified,
        "no reason given: not break-glass"
    );
    let mut with_reason = review.clone();
    with_reason.object.as_mut().unwrap()["metadata"]["annotations"]["gitgate.dev/break-glass-reason"] =
        serde_json::json!("INC-42: roll back the image by hand");
    let v = judge(&with_reason, &index, &config);
    assert_eq!(v.status, Status::Exempt);
    assert_eq!(v.break_glass.as_ref().unwrap().user, "alice");
    // An ownerReference alone does not exempt: the requester must be an allowed controller.
    let mut owned = review.clone();
    owned.object.as_mut().unwrap()["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "1", "controller": true}]);
    assert_eq!(
        judge(&owned, &index, &Config::default()).status,
        Status::Modified
    );
    let mut config = Config::default();
    config.exempt.controllers.push("alice".into());
    assert_eq!(judge(&owned, &index, &config).status, Status::Exempt);
}
