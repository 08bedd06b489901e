//! `gitgate demo` end to end, as a new user runs it: the binary, no configuration, no network.
//! The demo compares each verdict with the expected one itself (exit 1 otherwise); this test
//! also reads what it printed, so that a demo that silently skipped a step would fail here.

use std::process::Command;

#[test]
fn the_demo_tells_the_whole_story_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gitgate"))
        .args(["demo", "--color", "never"])
        // A fresh working directory with no gitgate.yaml, and the temporary directory the demo
        // uses inside ours, so that the test sees it removed.
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .env_remove("GITGATE_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );
    // The webhook's info logs stay out of the story.
    assert!(!stderr.contains("admission decision"), "{stderr}");

    // Before merge: the bad pull request is rejected with findings at file and line, and for its
    // unsigned commit; the good one passes.
    let check_1 = section(&stdout, "--head pr/1-add-cache", "--head pr/2-web-6.5.1");
    // Each finding points at the line to change: the image, the privileged flag.
    assert!(
        check_1.contains("clusters/prod/cache.yaml:16: error [latest-tag]"),
        "{check_1}"
    );
    assert!(
        check_1.contains("clusters/prod/cache.yaml:18: error [privileged-container]"),
        "{check_1}"
    );
    assert!(check_1.contains("not signed"), "{check_1}");
    assert!(check_1.contains("rejected:"), "{check_1}");
    let check_2 = section(&stdout, "--head pr/2-web-6.5.1", "pull request #2 merged");
    assert!(check_2.contains("passed:"), "{check_2}");

    // At apply time: each request's verdict, with the reasons a person needs.
    let verdicts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            (l.starts_with("ADMITTED") || l.starts_with("REFUSED")).then_some(l)
        })
        .collect();
    assert_eq!(verdicts.len(), 6, "{stdout}");
    assert!(verdicts[0].starts_with("ADMITTED") && verdicts[0].contains("Flux applies"));
    assert!(verdicts[1].starts_with("REFUSED") && verdicts[1].contains("kubectl edit"));
    assert!(verdicts[2].starts_with("REFUSED") && verdicts[2].contains("by hand"));
    assert!(verdicts[3].starts_with("REFUSED") && verdicts[3].contains("deletes ConfigMap"));
    assert!(verdicts[4].starts_with("REFUSED") && verdicts[4].contains("debug pod"));
    assert!(verdicts[5].starts_with("ADMITTED") && verdicts[5].contains("break-glass"));
    let apply = section(&stdout, "Flux applies", "kubectl edit");
    assert!(
        apply.contains("provenance: traceable") && apply.contains("clusters/prod/web.yaml:1"),
        "{apply}"
    );
    let edit = section(&stdout, "kubectl edit", "by hand");
    assert!(edit.contains("provenance: modified"), "{edit}");
    assert!(
        edit.contains("differs at spec.template.spec.containers[name=web].image"),
        "{edit}"
    );
    // The closed world: what Git never set is refused, named by its path.
    let by_hand = section(&stdout, "by hand", "deletes ConfigMap");
    assert!(by_hand.contains("provenance: modified"), "{by_hand}");
    assert!(
        by_hand.contains("unattested")
            && by_hand.contains("spec.template.spec.initContainers[name=setup]")
            && by_hand.contains("spec.template.spec.serviceAccountName"),
        "{by_hand}"
    );
    let delete = section(&stdout, "deletes ConfigMap", "debug pod");
    assert!(delete.contains("provenance: untraceable"), "{delete}");
    let pod = section(&stdout, "debug pod", "break-glass");
    assert!(
        pod.contains("[host-path]") || pod.contains("hostPath"),
        "{pod}"
    );
    let glass = section(&stdout, "break-glass image hotfix", "from /metrics");
    assert!(
        glass.contains("warning:") && glass.contains("INC-4711"),
        "{glass}"
    );
    assert!(stdout.contains("gitgate_break_glass_total 1"), "{stdout}");
    assert!(
        stdout.contains("Every verdict was the expected one"),
        "{stdout}"
    );

    // Nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
}

/// The text between the first line containing `from` and the next one containing `to`.
fn section<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("no {from:?} in:\n{text}"));
    let rest = &text[start..];
    let end = rest[from.len()..]
        .find(to)
        .map(|i| i + from.len())
        .unwrap_or(rest.len());
    &rest[..end]
}
