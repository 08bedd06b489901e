//! Human text: one line per finding, `path:line: level [policy] message`, then a summary.

use std::io::Write;

use crate::decision::findings::{Level, Report, Verdict};

pub fn write(report: &Report, color: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    for item in &report.items {
        let level = match item.level {
            Level::Error => paint("1;31", "error"),
            Level::Warning => paint("1;33", "warning"),
            Level::Note => paint("2", "note"),
        };
        let subject = match (&item.operation, &item.object) {
            (Some(op), Some(obj)) => format!(" ({op} {obj})"),
            _ => String::new(),
        };
        // Items about the pull request itself (its commits) have no file.
        // An object of the cluster that Git does not hold has a place but no line.
        let place = match (item.path.is_empty(), item.line) {
            (true, _) => String::new(),
            (false, 0) => format!("{}: ", item.path),
            (false, line) => format!("{}:{line}: ", item.path),
        };
        writeln!(
            out,
            "{place}{level} [{}] {}{subject}",
            item.policy, item.message
        )?;
    }
    let range = report
        .range
        .as_ref()
        .map(|r| format!(" in {}..{}", short(&r.base), short(&r.head)))
        .unwrap_or_default();
    let verdict = report.verdict();
    let colour = match verdict {
        Verdict::Passed => "1;32",
        Verdict::Failed | Verdict::Rejected | Verdict::Error => "1;31",
    };
    writeln!(
        out,
        "{}: {}",
        paint(colour, verdict.as_str()),
        super::summary(report, &range)
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
