//! The approved window cannot be talked around (issue 12): over real repositories with
//! SSH-signed history made in the test,
//! - unapproved commits on top take no slot, and a shallow mirror fetches deeper to find the
//!   approved commits behind them;
//! - `maxAge` is measured by the mirror's clock (when it first saw a commit, persisted in a
//!   fetched mirror), never a commit's own dates; a commit dated in the future is not approved;
//! - a key's validity is judged when the mirror first saw the commit;
//! - an empty window fails closed: DELETEs of what Git held are refused, `/readyz` says why,
//!   the gauge reads 0 and an error is logged;
//! - the protected branch is `refs/heads/<branch>`, never a tag named like it.
//!
//! Skips where git or ssh-keygen are absent.

mod support;

use std::path::Path;
use std::time::Duration;

use gitgate::config::Config;
use gitgate::git::Repo;
use gitgate::input::{Identity, Review, parse_admission_review};
use gitgate::provenance::approval::{Trust, Walk, Window, WindowCommit, walk, walk_limit, window};
use gitgate::provenance::index::Index;
use gitgate::provenance::mirror::{Mirror, Source};
use gitgate::provenance::openpgp::OpenPgpKeys;
use gitgate::provenance::seen::{self, FirstSeen};
use gitgate::provenance::signers::{AllowedSigners, SignatureProblem};
use gitgate::provenance::verdict::{Status, judge};
use support::signed::{DAY, EMAIL, SignedRepo, configmap, git_in, now, tools_here};

fn trust(allowed_signers: &str) -> Trust {
    Trust {
        ssh: AllowedSigners::parse("allowed_signers", allowed_signers).unwrap(),
        openpgp: OpenPgpKeys::default(),
    }
}

fn ids(commits: &[WindowCommit]) -> Vec<String> {
    commits.iter().map(|c| c.id.to_string()).collect()
}

fn approved(commits: &[WindowCommit]) -> Vec<String> {
    commits
        .iter()
        .filter(|c| c.approved())
        .map(|c| c.id.to_string())
        .collect()
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * DAY as u64)
}

fn tip(repo: &Repo) -> gix::ObjectId {
    repo.resolve_ref("refs/heads/main").unwrap().unwrap()
}

fn cm(name: &str) -> Identity {
    Identity {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("demo".into()),
        name: name.into(),
    }
}

/// An AdmissionReview `operation` of ConfigMap demo/`name` by alice, as the API server sends
/// it (at DELETE the object is null and the old object is set).
fn review(operation: &str, name: &str) -> Review {
    let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "demo", "uid": "0b7e"}, "data": {"a": "b"}});
    let (object, old) = match operation {
        "DELETE" => (serde_json::Value::Null, object),
        _ => (object, serde_json::Value::Null),
    };
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "7d3c", "operation": operation, "name": name, "namespace": "demo",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "userInfo": {"username": "alice", "groups": ["developers", "system:authenticated"]},
            "object": object, "oldObject": old, "dryRun": false
        }
    });
    parse_admission_review("test", body.to_string().as_bytes())
        .unwrap()
        .1
}

/// A configuration reading the repository at `url` with signatures required by `signers`.
fn signed_config(url: &str, signers: &Path, extra: &str) -> Config {
    Config::parse(
        "gitgate.yaml",
        &format!(
            "repository:\n  url: {url}\n  refresh: 100ms\n{extra}approval:\n  requireSignatures: true\n  allowedSigners: {}\n  window: {{commits: 2, maxAge: 168h}}\n",
            signers.display()
        ),
    )
    .unwrap()
}

#[test]
fn unapproved_commits_on_top_take_no_slot() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    r.key("stranger");
    let t = now() - DAY;
    let one = r.commit(&[("a.yaml", &configmap("a"))], Some("trusted"), t);
    let two = r.commit(&[("b.yaml", &configmap("b"))], Some("trusted"), t + 10);
    let mut on_top = Vec::new();
    for i in 0..5 {
        on_top.push(r.commit(
            &[("evil.yaml", &configmap(&format!("evil-{i}")))],
            None,
            t + 20 + i,
        ));
    }
    on_top.push(r.commit(
        &[("evil.yaml", &configmap("stranger"))],
        Some("stranger"),
        t + 30,
    ));
    on_top.reverse();
    let repo = Repo::open(&r.path()).unwrap();
    let signers = trust(&format!("{EMAIL} {trusted}\n"));
    let w = window(
        &repo,
        tip(&repo),
        Window {
            commits: 2,
            max_age: days(7),
        },
        Some(&signers),
    )
    .unwrap();
    assert_eq!(
        approved(&w),
        vec![two.clone(), one.clone()],
        "the two approved commits are the window, however many unapproved ones are on top"
    );
    let mut expected = on_top.clone();
    expected.extend([two.clone(), one.clone()]);
    assert_eq!(
        ids(&w),
        expected,
        "the unapproved ones are walked past, and reported"
    );
    let index = Index::build(&repo, &w, &[], "default").unwrap();
    assert_eq!(index.commits().count(), 2);
    assert!(!index.lookup(&cm("b")).is_empty());
    assert!(
        index.lookup(&cm("evil-4")).is_empty(),
        "unapproved content is not traceable"
    );
    assert_eq!(index.refused.len(), 6);

    // The walk is bounded: past walk_limit commits it gives up, and the window is empty.
    let limit = walk_limit(2);
    assert_eq!(limit, 2 * 4 + 64);
    for i in 0..limit {
        r.git(
            &["commit", "-q", "--allow-empty", "-m", "spam"],
            None,
            t + 100 + i as i64,
        );
    }
    let w = window(
        &repo,
        tip(&repo),
        Window {
            commits: 2,
            max_age: days(7),
        },
        Some(&signers),
    )
    .unwrap();
    assert_eq!(w.len(), limit);
    assert!(
        approved(&w).is_empty(),
        "an empty window, which fails closed"
    );
}

#[test]
fn a_shallow_mirror_fetches_deeper_for_approved_commits_behind_unapproved_ones() {
    if !tools_here() {
        return;
    }
    // The upstream repository (bare, as a Git server holds it) and a work tree to push from.
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    let signers = r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let bare = r.beside("gitops.git");
    git_in(
        r.dir.path(),
        &["init", "-q", "--bare", "-b", "main", "gitops.git"],
        None,
        0,
    );
    let push = || r.git(&["push", "-q", bare.to_str().unwrap(), "main"], None, 0);
    let t = now() - DAY;
    r.commit(&[("a.yaml", &configmap("a"))], Some("trusted"), t);
    let b = r.commit(&[("b.yaml", &configmap("b"))], Some("trusted"), t + 1);
    for i in 0..5 {
        r.commit(
            &[(&format!("evil-{i}.yaml"), &configmap(&format!("evil-{i}")))],
            None,
            t + 2 + i,
        );
    }
    push();
    let mirror_dir = r.beside("mirror");
    let config = signed_config(
        &format!("file://{}", bare.display()),
        &signers,
        &format!("  mirrorDir: {}\n", mirror_dir.display()),
    );
    let source = Source::from_config(&config).unwrap().unwrap();
    assert_eq!(
        source.remote.as_ref().unwrap().depth.unwrap().get(),
        3,
        "shallow: the window and one more"
    );
    let mirror = Mirror::default();
    mirror.sync(&source).unwrap();
    let snapshot = mirror.snapshot().unwrap();
    assert_eq!(
        snapshot.index.commits().count(),
        2,
        "the approved commits below five unsigned ones were fetched: {:?}",
        snapshot.index.empty_window_reason()
    );
    assert!(!snapshot.index.lookup(&cm("a")).is_empty());
    assert!(snapshot.index.lookup(&cm("evil-4")).is_empty());

    // A later signed commit: the window moves on, and later syncs keep working.
    let c = r.commit(&[("c.yaml", &configmap("c"))], Some("trusted"), t + 100);
    push();
    mirror.sync(&source).unwrap();
    let snapshot = mirror.snapshot().unwrap();
    assert_eq!(
        snapshot
            .index
            .commits()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
        vec![c, b],
        "the oldest approved commit left the window"
    );
    assert!(!snapshot.index.lookup(&cm("c")).is_empty());
}

#[test]
fn max_age_is_measured_by_the_mirror_clock_not_commit_dates() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let now = now();
    // Dated long ago, and far apart: the dates are what the committer typed.
    let old = r.commit(&[("a.yaml", &configmap("a"))], None, now - 100 * DAY);
    let middle = r.commit(&[("b.yaml", &configmap("b"))], None, now - 90 * DAY);
    let newest = r.commit(&[("c.yaml", &configmap("c"))], None, now - 20 * DAY);
    let repo = Repo::open(&r.path()).unwrap();
    let w = Window {
        commits: 10,
        max_age: days(5),
    };
    // First seen now: all three are young by the mirror's clock.
    let fresh = window(&repo, tip(&repo), w, None).unwrap();
    assert_eq!(
        ids(&fresh),
        vec![newest.clone(), middle.clone(), old.clone()]
    );
    assert!(fresh.iter().all(|c| c.first_seen >= now));

    // Seen ten days ago (after their dates: a commit seen before its own date would be dated
    // in the future): out of the window, except the newest approved commit.
    let id = |hex: &str| gix::ObjectId::from_hex(hex.as_bytes()).unwrap();
    let mut seen = FirstSeen::in_memory();
    for c in [&old, &middle, &newest] {
        seen.record(id(c), now - 10 * DAY);
    }
    let walked = walk(&repo, tip(&repo), w, None, &mut seen, now).unwrap();
    assert_eq!(
        ids(&walked.commits),
        vec![newest.clone()],
        "the newest approved commit always counts"
    );
    // The newest seen now, the others ten days ago.
    let mut seen = FirstSeen::in_memory();
    for c in [&old, &middle] {
        seen.record(id(c), now - 10 * DAY);
    }
    let walked = walk(&repo, tip(&repo), w, None, &mut seen, now).unwrap();
    assert_eq!(ids(&walked.commits), vec![newest.clone()]);
    // Only the newest was seen, four days ago (its history came with a deeper fetch today):
    // a parent existed before its child, so it is no newer.
    let mut seen = FirstSeen::in_memory();
    seen.record(id(&newest), now - 4 * DAY);
    let walked = walk(&repo, tip(&repo), w, None, &mut seen, now).unwrap();
    assert_eq!(walked.commits.len(), 3, "four days old: in");
    assert!(walked.commits.iter().all(|c| c.first_seen == now - 4 * DAY));
    assert_eq!(seen.get(&id(&old)), Some(now - 4 * DAY), "and recorded so");
}

#[test]
fn a_commit_dated_in_the_future_is_not_approved() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let now = now();
    let good = r.commit(&[("a.yaml", &configmap("a"))], None, now - DAY);
    let skewed = r.commit(&[("b.yaml", &configmap("b"))], None, now + 120);
    let future = r.commit(&[("c.yaml", &configmap("c"))], None, now + 3600);
    let repo = Repo::open(&r.path()).unwrap();
    let w = window(
        &repo,
        tip(&repo),
        Window {
            commits: 2,
            max_age: days(7),
        },
        None,
    )
    .unwrap();
    assert_eq!(ids(&w), vec![future.clone(), skewed.clone(), good.clone()]);
    assert!(
        matches!(w[0].approval, Err(SignatureProblem::FutureDated { .. })),
        "{:?}",
        w[0].approval
    );
    let reason = w[0].approval.as_ref().unwrap_err().to_string();
    assert!(reason.contains("dated in the future"), "{reason}");
    assert!(w[1].approved(), "two minutes of clock skew are allowed");
    assert_eq!(
        approved(&w),
        vec![skewed, good],
        "the future commit takes no slot"
    );
}

#[test]
fn a_key_is_judged_when_the_mirror_first_saw_the_commit() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let retired = r.key("retired");
    let current = r.key("current");
    let now = now();
    let date = |t: i64| gitgate::provenance::signers::format_time(t)[..10].replace('-', "");
    let signers = trust(&format!(
        "{EMAIL} valid-before={} {retired}\n{EMAIL} valid-after={} {current}\n",
        date(now - 2 * DAY),
        date(now - 30 * DAY),
    ));
    // Signed with the retired key and backdated into its validity: refused.
    let backdated = r.commit(
        &[("a.yaml", &configmap("a"))],
        Some("retired"),
        now - 10 * DAY,
    );
    let repo = Repo::open(&r.path()).unwrap();
    let w = Window {
        commits: 5,
        max_age: days(7),
    };
    let judged = window(&repo, tip(&repo), w, Some(&signers)).unwrap();
    assert_eq!(ids(&judged), vec![backdated.clone()]);
    assert!(
        matches!(
            judged[0].approval,
            Err(SignatureProblem::KeyNotValid { .. })
        ),
        "{:?}",
        judged[0].approval
    );
    let reason = judged[0].approval.as_ref().unwrap_err().to_string();
    assert!(
        reason.contains("not valid at") && reason.contains("allowed_signers:1"),
        "{reason}"
    );
    // Seen by the mirror while the key was valid (a persisted first sight): approved.
    let mut seen = FirstSeen::in_memory();
    seen.record(
        gix::ObjectId::from_hex(backdated.as_bytes()).unwrap(),
        now - 3 * DAY,
    );
    let walked: Walk = walk(&repo, tip(&repo), w, Some(&signers), &mut seen, now).unwrap();
    assert_eq!(
        walked.commits[0].approval.as_deref(),
        Ok("allowed_signers:1")
    );
    // The current key, on a commit dated before the key's validity began: the date is not
    // what is judged, the first sight is.
    let dated_early = r.commit(
        &[("b.yaml", &configmap("b"))],
        Some("current"),
        now - 40 * DAY,
    );
    let judged = window(&repo, tip(&repo), w, Some(&signers)).unwrap();
    assert_eq!(judged[0].id.to_string(), dated_early);
    assert_eq!(judged[0].approval.as_deref(), Ok("allowed_signers:2"));
}

#[test]
fn first_seen_times_persist_in_a_fetched_mirror() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let bare = r.beside("gitops.git");
    git_in(
        r.dir.path(),
        &["init", "-q", "--bare", "-b", "main", "gitops.git"],
        None,
        0,
    );
    let now = now();
    let old = r.commit(&[("a.yaml", &configmap("a"))], None, now - DAY);
    let newest = r.commit(&[("b.yaml", &configmap("b"))], None, now - DAY + 1);
    r.git(&["push", "-q", bare.to_str().unwrap(), "main"], None, 0);
    let mirror_dir = r.beside("mirror");
    let config = Config::parse(
        "gitgate.yaml",
        &format!(
            "repository: {{url: 'file://{}', mirrorDir: {}}}\napproval: {{window: {{commits: 5, maxAge: 168h}}}}\n",
            bare.display(),
            mirror_dir.display()
        ),
    )
    .unwrap();
    let source = Source::from_config(&config).unwrap().unwrap();
    let file = source.first_seen_file().unwrap();
    assert_eq!(file, mirror_dir.join(seen::FILE_NAME));
    Mirror::default().sync(&source).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    for c in [&old, &newest] {
        let at: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{c} ")))
            .unwrap_or_else(|| panic!("{c} is not in {text}"))
            .parse()
            .unwrap();
        assert!(
            (now..now + 600).contains(&at),
            "first seen now, not at its date: {at}"
        );
    }
    // As if a process before the restart had seen the older commit ten days ago.
    let rewritten: String = text
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((id, _)) if id == old => format!("{id} {}\n", now - 10 * DAY),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&file, rewritten).unwrap();
    let restarted = Mirror::default();
    restarted.sync(&source).unwrap();
    let index = restarted.snapshot().unwrap().index.clone();
    assert_eq!(
        index.commits().map(|c| c.to_string()).collect::<Vec<_>>(),
        vec![newest.clone()],
        "the restart remembers: the older commit is out by age"
    );
}

#[test]
fn an_empty_window_fails_closed() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    let signers = r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let t = now() - DAY;
    r.commit(
        &[("web-config.yaml", &configmap("web-config"))],
        Some("trusted"),
        t,
    );
    let good = r.git(&["rev-parse", "HEAD"], None, 0);
    let config = signed_config(&r.path().display().to_string(), &signers, "");
    let source = Source::from_config(&config).unwrap().unwrap();
    let mirror = Mirror::default();
    mirror.sync(&source).unwrap();
    let verdict = |operation: &str, name: &str| {
        judge(
            &review(operation, name),
            &mirror.snapshot().unwrap().index,
            &config,
        )
    };
    assert_eq!(
        verdict("DELETE", "web-config").status,
        Status::Untraceable,
        "still in Git"
    );
    assert_eq!(
        verdict("DELETE", "debug").status,
        Status::Traceable,
        "never in Git"
    );

    // The branch is rewritten to unsigned history (a force-push): no approved commit at all.
    r.git(&["checkout", "-q", "--orphan", "rewritten"], None, 0);
    r.git(&["rm", "-q", "-rf", "."], None, 0);
    r.commit(&[("other.yaml", &configmap("other"))], None, t + 10);
    r.git(&["branch", "-q", "-f", "main", "rewritten"], None, 0);
    mirror.sync(&source).unwrap();
    let index = mirror.snapshot().unwrap().index.clone();
    assert!(index.window_is_empty());
    assert_eq!(
        index.last_approved().map(|c| c.to_string()),
        Some(good.clone())
    );
    let reason = index.empty_window_reason().unwrap();
    assert!(
        reason.contains("the window holds no approved commit"),
        "{reason}"
    );
    assert!(reason.contains("not signed"), "says why: {reason}");
    let v = verdict("DELETE", "web-config");
    assert_eq!(
        v.status,
        Status::Untraceable,
        "what the last good index held is not deletable: {}",
        v.reason
    );
    assert!(v.reason.contains("no approved commit"), "{}", v.reason);
    assert_eq!(
        verdict("DELETE", "debug").status,
        Status::Traceable,
        "{}",
        verdict("DELETE", "debug").reason
    );
    let v = verdict("CREATE", "web-config");
    assert_eq!(v.status, Status::Untraceable);
    assert!(v.reason.contains("no approved commit"), "{}", v.reason);
    assert_eq!(
        verdict("CREATE", "other").status,
        Status::Untraceable,
        "unsigned content"
    );

    // A mirror that never saw an approved commit refuses every DELETE.
    let fresh = Mirror::default();
    fresh.sync(&source).unwrap();
    let index = fresh.snapshot().unwrap().index.clone();
    assert_eq!(index.last_approved(), None);
    let v = judge(&review("DELETE", "debug"), &index, &config);
    assert_eq!(v.status, Status::Untraceable, "{}", v.reason);

    // A signed commit again: the window is back.
    r.git(&["rm", "-q", "other.yaml"], None, 0);
    r.commit(
        &[("web-config.yaml", &configmap("web-config"))],
        Some("trusted"),
        t + 20,
    );
    r.git(&["branch", "-q", "-f", "main", "rewritten"], None, 0);
    // It does not descend from the last approved commit: the history was rewritten, and the
    // approved state never moves backwards (issue 17) until an operator acknowledges it.
    let err = mirror.sync(&source).unwrap_err().to_string();
    assert!(
        err.contains("rewound") && err.contains(&good[..12]),
        "{err}"
    );
    assert!(mirror.snapshot().unwrap().index.window_is_empty());
    let mut acknowledged = source.clone();
    acknowledged.acknowledge_rewind = Some(r.git(&["rev-parse", "HEAD"], None, 0));
    mirror.sync(&acknowledged).unwrap();
    assert!(!mirror.snapshot().unwrap().index.window_is_empty());
    assert_eq!(
        verdict("DELETE", "other").status,
        Status::Traceable,
        "no longer in the newest approved commit"
    );
}

/// The real binary: `/readyz` not ready with the reason, the gauge at 0, the DELETE refused and
/// an error logged, once the branch holds no approved commit.
#[test]
fn an_empty_window_makes_the_webhook_not_ready_and_says_why() {
    if !tools_here() {
        return;
    }
    use support::binary::{Served, free_port};
    use support::pki::Pki;
    let r = SignedRepo::new();
    let trusted = r.key("trusted");
    let signers = r.allowed_signers(&format!("{EMAIL} {trusted}\n"));
    let t = now() - DAY;
    r.commit(
        &[("web-config.yaml", &configmap("web-config"))],
        Some("trusted"),
        t,
    );
    let config_file = r.beside("gitgate.yaml");
    std::fs::write(
        &config_file,
        format!(
            "repository:\n  url: {}\n  refresh: 100ms\napproval:\n  requireSignatures: true\n  allowedSigners: {}\n",
            r.path().display(),
            signers.display()
        ),
    )
    .unwrap();
    let pki = Pki::new();
    pki.issue("server", "gitgate");
    let port = free_port();
    let served = Served::start(
        &[
            "serve",
            "-c",
            config_file.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            pki.path("server.crt").to_str().unwrap(),
            "--tls-key",
            pki.path("server.key").to_str().unwrap(),
        ],
        &[],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = pki.client(None);
    let base = format!("https://localhost:{port}");
    let readyz = || {
        let client = client.clone();
        let url = format!("{base}/readyz");
        async move {
            let resp = client.get(url).send().await.ok()?;
            let status = resp.status().as_u16();
            Some((status, resp.json::<serde_json::Value>().await.unwrap()))
        }
    };
    let wait_for = |want: u16| {
        runtime.block_on(async {
            for _ in 0..200 {
                if let Some((status, body)) = readyz().await
                    && status == want
                {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("/readyz never answered {want}");
        })
    };
    wait_for(200);
    // Force-pushed to unsigned history.
    r.git(&["checkout", "-q", "--orphan", "rewritten"], None, 0);
    r.git(&["rm", "-q", "-rf", "."], None, 0);
    r.commit(&[("other.yaml", &configmap("other"))], None, t + 10);
    r.git(&["branch", "-q", "-f", "main", "rewritten"], None, 0);
    let body = wait_for(503);
    assert_eq!(body["ready"], false, "{body}");
    let reason = body["provenance"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the window holds no approved commit"),
        "{body}"
    );
    runtime.block_on(async {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .lines()
                .any(|l| l == "gitgate_window_approved_commits 0"),
            "{metrics}"
        );
        let delete = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "del-1", "operation": "DELETE", "name": "web-config", "namespace": "demo",
                "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                "userInfo": {"username": "alice", "groups": ["developers"]},
                "object": null,
                "oldObject": {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "web-config", "namespace": "demo"}, "data": {"a": "b"}}
            }
        });
        let answer: serde_json::Value = client
            .post(format!("{base}/validate"))
            .json(&delete)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["response"]["allowed"], false, "{answer}");
        let message = answer["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("no approved commit"), "{message}");
    });
    let (_, logs) = served.stop();
    assert!(
        logs.lines()
            .any(|l| l.contains("ERROR") && l.contains("the approved window is empty")),
        "{logs}"
    );
}

#[test]
fn a_tag_named_like_the_branch_does_not_shadow_it() {
    if !tools_here() {
        return;
    }
    let r = SignedRepo::new();
    let t = now() - DAY;
    r.commit(&[("branch.yaml", &configmap("from-branch"))], None, t);
    // Another commit, off the branch, tagged `main`.
    r.git(&["checkout", "-q", "-b", "elsewhere"], None, 0);
    r.commit(&[("tag.yaml", &configmap("from-tag"))], None, t + 10);
    r.git(&["tag", "main"], None, 0);
    r.git(&["checkout", "-q", "main"], None, 0);
    let config = Config::parse(
        "gitgate.yaml",
        &format!("repository: {{url: {}}}\n", r.path().display()),
    )
    .unwrap();
    let mirror = Mirror::default();
    mirror
        .sync(&Source::from_config(&config).unwrap().unwrap())
        .unwrap();
    let index = mirror.snapshot().unwrap().index.clone();
    assert!(
        !index.lookup(&cm("from-branch")).is_empty(),
        "refs/heads/main is the branch"
    );
    assert!(
        index.lookup(&cm("from-tag")).is_empty(),
        "the tag main does not stand in for it"
    );
    // Only the exact name resolves.
    let repo = Repo::open(&r.path()).unwrap();
    assert_ne!(
        repo.resolve_ref("refs/heads/main").unwrap(),
        repo.resolve_ref("refs/tags/main").unwrap()
    );
    assert_eq!(repo.resolve_ref("refs/heads/nope").unwrap(), None);
}

/// The real binary at a first start on a long history of large manifests: ready once the
/// newest approved commit is indexed (`/readyz` says the whole window is not in yet), and a
/// request that only an older commit of the window traces waits for it and is admitted,
/// while one Git never held stays refused.
#[test]
fn a_first_start_decides_on_the_newest_commit_while_the_window_is_read() {
    if !tools_here() {
        return;
    }
    use support::gate::{CONFIGMAP, Gate, allowed, request};
    let r = SignedRepo::new();
    let t = now() - DAY;
    let web = |v: usize| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: web-config, namespace: demo}}\ndata: {{v: \"{v}\"}}\n"
        )
    };
    // A large manifest changing in every commit: what makes the window slow to read.
    let big = |c: usize| {
        let mut text = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: demo}\ndata:\n",
        );
        for k in 0..3000 {
            text.push_str(&format!("  key-{k}: value {k} of revision {c}\n"));
        }
        text
    };
    // A kustomization that renders at the older commits and fails at the newest: Git is
    // taken to still hold what it rendered last (a DELETE of it is refused).
    let rendered = support::engines::kustomize();
    let app = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, namespace: demo}\ndata: {a: b}\n";
    let mut first = vec![("web.yaml", web(0)), ("big.yaml", big(0))];
    if rendered {
        first.push((
            "app/kustomization.yaml",
            "resources: [config.yaml]\n".into(),
        ));
        first.push(("app/config.yaml", app.into()));
    }
    let first: Vec<(&str, &str)> = first.iter().map(|(p, t)| (*p, t.as_str())).collect();
    r.commit(&first, None, t);
    for c in 1..80 {
        r.commit(&[("big.yaml", &big(c))], None, t + c as i64);
    }
    let mut last = vec![("web.yaml", web(1))];
    if rendered {
        last.push((
            "app/kustomization.yaml",
            "resources: [missing.yaml]\n".into(),
        ));
    }
    let last: Vec<(&str, &str)> = last.iter().map(|(p, t)| (*p, t.as_str())).collect();
    r.commit(&last, None, t + 100);
    let gate = Gate::start(
        r.dir.path(),
        &format!(
            "repository:\n  url: {}\n  refresh: 1h\napproval:\n  window: {{commits: 200, maxAge: 720h}}\nserver:\n  timeout: 60s\n",
            r.path().display(),
        ),
    );
    // Ready as soon as the newest approved commit is indexed: the window is still read.
    let first = gate.wait_ready();
    assert_eq!(first["provenance"]["wholeWindow"], false, "{first}");
    let create = |v: usize| {
        let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "demo"}, "data": {"v": v.to_string()}});
        gate.review(request(
            "CREATE",
            CONFIGMAP,
            None,
            "system:serviceaccount:flux-system:kustomize-controller",
            &object,
            None,
        ))
    };
    // A DELETE of what the broken kustomization rendered before: the newest commit alone
    // does not hold it, the window does (its last good render): refused.
    if rendered {
        let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app-config", "namespace": "demo"}, "data": {"a": "b"}});
        let delete = gate.review(request(
            "DELETE",
            CONFIGMAP,
            None,
            "system:serviceaccount:flux-system:kustomize-controller",
            &object,
            None,
        ));
        assert!(!allowed(&delete), "{delete}");
    }
    // The newest commit's version at once; the older one once the window is in.
    let newest = create(1);
    assert!(allowed(&newest), "{newest}");
    let older = create(0);
    assert!(allowed(&older), "{older}");
    let never = create(7);
    assert!(!allowed(&never), "{never}");
    let body = gate.wait_ready();
    assert_eq!(body["provenance"]["wholeWindow"], true, "{body}");
    assert_eq!(body["provenance"]["approvedCommits"], 81, "{body}");
    let logs = gate.stop();
    assert!(
        logs.contains("the newest approved commits are indexed and decide"),
        "{logs}"
    );
}
