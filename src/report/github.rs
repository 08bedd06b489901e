//! GitHub Actions workflow commands (`::error file=...,line=...,title=...::message`), so that
//! findings appear on the pull request's diff, then a summary line.

use std::io::Write;

use crate::decision::findings::{Level, Report};

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for item in &report.items {
        let command = match item.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "notice",
        };
        let place = if item.path.is_empty() {
            String::new()
        } else {
            format!("file={},line={},", property(&item.path), item.line)
        };
        writeln!(
            out,
            "::{command} {place}title={}::{}",
            property(&format!("gitgate: {}", item.policy)),
            data(&item.message)
        )?;
    }
    writeln!(
        out,
        "gitgate: {}: {}",
        report.verdict().as_str(),
        super::summary(report, "")
    )
}

/// Escapes a command's message (GitHub's toolkit `escapeData`).
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a command property (`escapeProperty`): also `:` and `,`.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_as_the_toolkit_does() {
        assert_eq!(super::data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(super::property("x: y, z"), "x%3A y%2C z");
    }
}
