//! Output formats of `gitgate check`, each one file, all fed the same [`Report`].

pub mod commands;
pub mod github;
pub mod json;
pub mod junit;
pub mod sarif;
pub mod text;

use std::io::Write;

use crate::decision::findings::{Level, Report};

/// The output formats (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `path:line: [policy] message`, colour on a terminal, and a summary line.
    Text,
    /// The report as JSON.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
    /// JUnit XML: one test case per object checked.
    Junit,
    /// GitHub Actions workflow commands: findings appear on the pull request's diff.
    Github,
    /// conftest's name of its standard output; `text` outside conftest mode.
    Stdout,
    /// Test Anything Protocol, as conftest prints it.
    Tap,
    /// A table of results, as conftest prints it.
    Table,
    /// The JSON report written as YAML (gator's `-o yaml`).
    Yaml,
}

/// Writes `report` in `format`. `color` applies to the text format only. Every format carries
/// the report's [`Verdict`](crate::decision::findings::Verdict), the one the exit code follows.
pub fn write(
    format: Format,
    report: &Report,
    color: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Text | Format::Stdout => text::write(report, color, out),
        Format::Tap => tap(report, out),
        Format::Table => table(report, out),
        Format::Json => json::write(report, out),
        Format::Yaml => json::write_yaml(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
        Format::Github => github::write(report, out),
    }
}

/// `2 objects in 3 files{range}: 1 error, 0 warnings`: the one-line summary of the text and
/// GitHub formats (after the verdict), with `, 1 could not be checked` when something could
/// not be.
pub fn summary(report: &Report, range: &str) -> String {
    let unchecked = report.counts().unchecked;
    // An audit reads kinds of a cluster, not files.
    let read = match &report.audit {
        Some(audit) => format!("{} of {}", plural(audit.kinds.len(), "kind"), audit.server),
        None => plural(report.files, "file"),
    };
    format!(
        "{} in {}{range}: {}, {}{}",
        plural(report.checked.len(), "object"),
        read,
        plural(report.count(Level::Error), "error"),
        plural(report.count(Level::Warning), "warning"),
        if unchecked > 0 {
            format!(", {unchecked} could not be checked")
        } else {
            String::new()
        }
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// TAP: one line per item (`not ok` errors and warnings, `ok` notes).
fn tap(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    if report.items.is_empty() {
        return writeln!(out, "1..1\nok 1 - {}", summary(report, ""));
    }
    writeln!(out, "1..{}", report.items.len())?;
    for (n, i) in report.items.iter().enumerate() {
        let ok = if i.level == Level::Note {
            "ok"
        } else {
            "not ok"
        };
        writeln!(
            out,
            "{ok} {} - {}:{} - {} - {}",
            n + 1,
            i.path,
            i.line,
            i.policy,
            i.message
        )?;
    }
    Ok(())
}

/// A table: level, file:line, policy, message.
fn table(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for i in &report.items {
        let level = match i.level {
            Level::Error => "failure",
            Level::Warning => "warning",
            Level::Note => "note",
        };
        writeln!(
            out,
            "{level}\t{}:{}\t{}\t{}",
            i.path, i.line, i.policy, i.message
        )?;
    }
    writeln!(out, "{}", summary(report, ""))
}
