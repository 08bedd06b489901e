//! The report as one JSON document: the verdict (the exit code's reason) and the counts first,
//! then the report itself.

use std::io::Write;

use serde::Serialize;

use crate::decision::findings::{Counts, Report, Verdict};

#[derive(Serialize)]
struct Document<'a> {
    verdict: Verdict,
    #[serde(rename = "exitCode")]
    exit_code: u8,
    counts: Counts,
    #[serde(flatten)]
    report: &'a Report,
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let verdict = report.verdict();
    let document = Document {
        verdict,
        exit_code: verdict.exit_code(),
        counts: report.counts(),
        report,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

/// The same document as YAML (gator's `-o yaml`).
pub fn write_yaml(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let verdict = report.verdict();
    let document = Document {
        verdict,
        exit_code: verdict.exit_code(),
        counts: report.counts(),
        report,
    };
    let text = serde_saphyr::to_string(&document).map_err(std::io::Error::other)?;
    write!(out, "{text}")
}
