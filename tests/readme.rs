//! Every `gitgate` command line in the README's code blocks parses with the real command-line
//! definition, so that a renamed flag or command cannot leave the README behind. (The
//! commands that need no cluster or network are also run, as written, by the tests of their
//! own features: the demo, `test`/`policies`/`check -p` on a policy directory, `verify`.)

use clap::Parser;
use gitgate::cli::Cli;

/// The `gitgate ...` command lines inside fenced code blocks, without prompts, comments,
/// redirections, pipes and optional parts in brackets.
fn command_lines(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let mut text = line.trim();
        for prefix in ["$ ", "- run: ", "run: ", "- "] {
            text = text.strip_prefix(prefix).unwrap_or(text).trim_start();
        }
        let text = text
            .strip_prefix("cargo run --release -- ")
            .map(|rest| format!("gitgate {rest}"))
            .unwrap_or_else(|| text.to_string());
        if !text.starts_with("gitgate ") && text != "gitgate" {
            continue;
        }
        // Cut at a comment, a redirection, a pipe or `||`; drop `[optional]` parts.
        let mut command = text.as_str();
        for stop in [" #", " >", " |"] {
            if let Some(i) = command.find(stop) {
                command = &command[..i];
            }
        }
        let mut words = Vec::new();
        let mut optional = 0;
        for word in command.split_whitespace() {
            optional += word.matches('[').count();
            if optional == 0 {
                words.push(word.to_string());
            }
            optional -= word.matches(']').count().min(optional);
        }
        out.push(words.join(" "));
    }
    out
}

#[test]
fn every_command_in_the_readme_parses() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let commands = command_lines(&readme);
    assert!(
        commands.len() >= 12,
        "the README's commands were not found: {commands:#?}"
    );
    for required in [
        "gitgate demo",
        "gitgate check",
        "gitgate serve",
        "gitgate test",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(required)),
            "{required} in {commands:#?}"
        );
    }
    for command in &commands {
        if let Err(e) = Cli::try_parse_from(command.split_whitespace()) {
            panic!("README: `{command}` does not parse:\n{e}");
        }
    }
}

#[test]
fn the_chart_readme_commands_parse_too() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/gitgate/README.md"
    ))
    .expect("charts/gitgate/README.md");
    for command in command_lines(&readme) {
        if let Err(e) = Cli::try_parse_from(command.split_whitespace()) {
            panic!("charts/gitgate/README.md: `{command}` does not parse:\n{e}");
        }
    }
}
