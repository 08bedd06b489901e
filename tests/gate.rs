//! `check` takes its gate (gitgate.yaml and the configured policy directories) from the merge
//! base on the protected branch, never from the pull request it judges; a pull request that
//! changes the gate is reported, and one that breaks it is an error. On the real binary, with
//! repositories made in the test.

mod support;

use std::path::Path;

use support::{commit_files, git, gitgate, repo_with};

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: \"nginx:IMAGE\", resources: {limits: {cpu: 100m, memory: 64Mi}}}]}
";

const NO_DEBUG: &str = "package team.no_debug\nimport rego.v1\ndeny contains \"no debug Deployments\" if { input.review.object.metadata.labels.debug == \"true\" }\n";

fn web(tag: &str) -> String {
    WEB.replace("IMAGE", tag)
}

fn check(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    gitgate(dir, &all)
}

/// A repository whose `main` holds the gate and a Deployment, checked out on a new branch
/// `pr`.
fn protected(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = repo_with(files);
    git(
        dir.path(),
        "a@example.com",
        0,
        &["checkout", "-q", "-b", "pr"],
    );
    dir
}

#[test]
fn a_pull_request_that_turns_policies_off_is_still_judged_by_them() {
    let base_web = web("1.25");
    let dir = protected(&[
        ("gitgate.yaml", b"repository: {paths: [apps]}\n"),
        ("apps/web.yaml", base_web.as_bytes()),
    ]);
    let latest = web("latest");
    commit_files(
        dir.path(),
        &[
            (
                "gitgate.yaml",
                b"repository: {paths: [apps]}\npolicies: {builtin: false, allowEmpty: true}\n",
            ),
            ("apps/web.yaml", latest.as_bytes()),
        ],
        "turn the gate off",
    );
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("[latest-tag]"), "{out}");
    assert!(
        out.contains("gitgate.yaml:1: warning [gitgate] this pull request changes the gate"),
        "{out}"
    );
    // `--trust-head` is today's behaviour, on request.
    let (code, out, err) = check(dir.path(), &["--trust-head"]);
    assert_eq!(code, 0, "{out}{err}");
    // `--repo X` finds X/gitgate.yaml, from X's protected branch.
    let parent = dir.path().parent().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let (code, out, err) = check(parent, &["--repo", name]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("[latest-tag]"), "{out}");
}

#[test]
fn policy_directories_come_from_the_base_and_a_broken_head_policy_is_an_error() {
    let base_web = web("1.25");
    let dir = protected(&[
        (
            "gitgate.yaml",
            b"repository: {paths: [apps]}\npolicies: {paths: [policy]}\n",
        ),
        ("policy/no_debug.rego", NO_DEBUG.as_bytes()),
        ("apps/web.yaml", base_web.as_bytes()),
    ]);
    // The pull request deletes the policy and adds what it forbade.
    std::fs::remove_file(dir.path().join("policy/no_debug.rego")).unwrap();
    let debug = base_web.replace(
        "metadata: {name: web, namespace: default}",
        "metadata: {name: web, namespace: default, labels: {debug: \"true\"}}",
    );
    commit_files(
        dir.path(),
        &[
            ("apps/web.yaml", debug.as_bytes()),
            (
                "policy/other.rego",
                b"package team.other\nimport rego.v1\ndeny contains \"x\" if { false }\n",
            ),
        ],
        "remove the policy",
    );
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("no debug Deployments"), "{out}");
    assert!(
        out.contains("changes the gate")
            && out.contains("policy/no_debug.rego")
            && out.contains("policy/other.rego"),
        "{out}"
    );
    // A head whose policy does not compile breaks the gate for every later pull request.
    commit_files(
        dir.path(),
        &[(
            "policy/broken.rego",
            b"package team.broken\nimport rego.v1\ndeny contains \"x\" if { nosuch.fn(input) }\n",
        )],
        "break it",
    );
    let (code, out, err) = check(dir.path(), &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        out.contains("breaks the gate") && out.contains("undefined function nosuch.fn"),
        "{out}"
    );
}

#[test]
fn an_invalid_configuration_on_the_pull_request_is_an_error_and_the_base_still_judges() {
    let base_web = web("1.25");
    let dir = protected(&[
        ("gitgate.yaml", b"repository: {paths: [apps]}\n"),
        ("apps/web.yaml", base_web.as_bytes()),
    ]);
    commit_files(
        dir.path(),
        &[(
            "gitgate.yaml",
            b"repository: {paths: [apps]}\npolicies: {bultin: false}\n",
        )],
        "a typo",
    );
    let (code, out, err) = check(dir.path(), &[]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        out.contains("breaks the gate") && out.contains("bultin"),
        "{out}"
    );
}

#[test]
fn a_tag_named_like_the_protected_branch_does_not_move_the_base() {
    let base_web = web("1.25");
    let dir = protected(&[
        ("gitgate.yaml", b"repository: {paths: [apps]}\n"),
        ("apps/web.yaml", base_web.as_bytes()),
    ]);
    let latest = web("latest");
    commit_files(
        dir.path(),
        &[("apps/web.yaml", latest.as_bytes())],
        "latest",
    );
    // A tag `main` at the pull request's own head would make the range empty.
    git(dir.path(), "a@example.com", 0, &["tag", "main", "HEAD"]);
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("[latest-tag]"), "{out}");
}

#[test]
fn a_pull_request_cannot_name_its_own_protected_branch() {
    // The attack: a branch `evil` (pushed next to the pull request) holds a gitgate.yaml that
    // names `evil` as the protected branch and turns the policies off; the pull request builds
    // on it. Had the pull request's own `repository.branch` chosen where the gate is read
    // from, the gate would have been evil's, and the `:latest` image would have passed.
    let base_web = web("1.25");
    let dir = protected(&[
        ("gitgate.yaml", b"repository: {paths: [apps]}\n"),
        ("apps/web.yaml", base_web.as_bytes()),
    ]);
    git(
        dir.path(),
        "a@example.com",
        0,
        &["checkout", "-q", "-b", "evil", "main"],
    );
    commit_files(
        dir.path(),
        &[(
            "gitgate.yaml",
            b"repository: {paths: [apps], branch: evil}\npolicies: {builtin: false, allowEmpty: true}\n",
        )],
        "a gate of its own",
    );
    git(dir.path(), "a@example.com", 0, &["checkout", "-q", "pr"]);
    git(
        dir.path(),
        "a@example.com",
        0,
        &["reset", "-q", "--hard", "evil"],
    );
    let latest = web("latest");
    commit_files(
        dir.path(),
        &[("apps/web.yaml", latest.as_bytes())],
        "latest",
    );
    let (code, out, err) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("[latest-tag]"), "{out}");
    assert!(out.contains("this pull request changes the gate"), "{out}");

    // Where nothing but the pull request names the protected branch (no origin/HEAD, no
    // main), its word is taken, and the report says so.
    git(
        dir.path(),
        "a@example.com",
        0,
        &["branch", "-q", "-m", "main", "trunk"],
    );
    let (_, out, err) = check(dir.path(), &[]);
    assert!(
        out.contains("is named by the pull request's own gitgate.yaml") && out.contains("--base"),
        "{out}{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_the_pull_request_makes_does_not_choose_the_configuration() {
    // One configuration per environment; CI checks production with `-c ci/prod/gitgate.yaml`.
    // The pull request turns `ci/prod` into a symlink to `ci/staging`, whose configuration
    // (at the base) looks elsewhere and has no policies: followed, it passed a `:latest`
    // image in apps/prod.
    let base_web = web("1.25");
    let dir = protected(&[
        (
            "ci/prod/gitgate.yaml",
            b"repository: {paths: [apps/prod]}\n",
        ),
        (
            "ci/staging/gitgate.yaml",
            b"repository: {paths: [apps/staging]}\npolicies: {builtin: false, allowEmpty: true}\n",
        ),
        ("apps/prod/web.yaml", base_web.as_bytes()),
        ("apps/staging/web.yaml", base_web.as_bytes()),
    ]);
    std::fs::remove_dir_all(dir.path().join("ci/prod")).unwrap();
    std::os::unix::fs::symlink("staging", dir.path().join("ci/prod")).unwrap();
    let latest = web("latest");
    commit_files(
        dir.path(),
        &[("apps/prod/web.yaml", latest.as_bytes())],
        "prod follows staging",
    );
    let (code, out, err) = check(dir.path(), &["-c", "ci/prod/gitgate.yaml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("ci/prod, a symlink in the working tree"),
        "{err}"
    );
    // The real path still works.
    let (code, out, err) = check(dir.path(), &["-c", "ci/staging/gitgate.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_policy_directory_named_on_the_command_line_inside_the_repository_comes_from_the_base() {
    let base_web = web("1.25");
    let dir = protected(&[
        ("gitgate.yaml", b"repository: {paths: [apps]}\n"),
        ("policy/no_debug.rego", NO_DEBUG.as_bytes()),
        ("apps/web.yaml", base_web.as_bytes()),
    ]);
    // The pull request empties the rule that `gitgate check -p policy` (the CI job) runs.
    let debug = base_web.replace(
        "metadata: {name: web, namespace: default}",
        "metadata: {name: web, namespace: default, labels: {debug: \"true\"}}",
    );
    commit_files(
        dir.path(),
        &[
            ("apps/web.yaml", debug.as_bytes()),
            (
                "policy/no_debug.rego",
                b"package team.no_debug\nimport rego.v1\ndeny contains \"x\" if { false }\n",
            ),
        ],
        "quietly weaken the policy",
    );
    let (code, out, err) = check(dir.path(), &["-p", "policy"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("no debug Deployments"), "{out}");
    // Outside the repository, --policy is the job's own, read from disk.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("p.rego"),
        "package team.outside\nimport rego.v1\ndeny contains \"outside policy\" if { input.review.object.kind == \"Deployment\" }\n",
    )
    .unwrap();
    let (code, out, err) = check(dir.path(), &["-p", outside.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("outside policy"), "{out}");
    // --trust-head reads the working tree, as asked.
    let (code, out, err) = check(dir.path(), &["--trust-head", "-p", "policy"]);
    assert_eq!(code, 0, "{out}{err}");
}
