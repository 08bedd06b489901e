//! SARIF 2.1.0 (the format GitHub code scanning uploads): one run, one rule per policy, one
//! result per finding with its file and line (every result has a location: GitHub requires
//! one), and the verdict as the run's `properties.verdict`.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};

use crate::decision::findings::{Level, Report, Verdict};

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub fn document(report: &Report) -> Value {
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &report.items {
        let next = rules.len();
        rules.entry(item.policy.as_str()).or_insert(next);
    }
    let mut ordered: Vec<(&str, usize)> = rules.iter().map(|(k, v)| (*k, *v)).collect();
    ordered.sort_by_key(|(_, i)| *i);
    let rule_list: Vec<Value> = ordered
        .iter()
        .map(|(id, _)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": format!("gitgate policy {id}")},
                "helpUri": "https://github.com/gitgate/gitgate#policies",
            })
        })
        .collect();
    // GitHub code scanning refuses a whole upload when one result has no file, so items about
    // the pull request itself (an unapproved commit) are placed at the first file it changed,
    // or at the repository's root when it changed none that gitgate reads.
    let first_file = report
        .checked
        .iter()
        .map(|c| c.path.as_str())
        .chain(report.items.iter().map(|i| i.path.as_str()))
        .find(|p| !p.is_empty());
    let results: Vec<Value> = report
        .items
        .iter()
        .map(|item| {
            let level = match item.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Note => "note",
            };
            let mut result = json!({
                "ruleId": item.policy,
                "ruleIndex": rules[item.policy.as_str()],
                "level": level,
                "message": {"text": item.message},
            });
            let location = match (item.path.as_str(), first_file) {
                ("", Some(file)) => json!({
                    "artifactLocation": {"uri": uri(file)},
                    "region": {"startLine": 1},
                }),
                ("", None) => json!({"artifactLocation": {"uri": "."}}),
                (path, _) => json!({
                    "artifactLocation": {"uri": uri(path)},
                    "region": {"startLine": item.line.max(1)},
                }),
            };
            result["locations"] = json!([{"physicalLocation": location}]);
            if item.unchecked {
                result["properties"] = json!({"unchecked": true});
            }
            result
        })
        .collect();
    let run = json!({
        "tool": {"driver": {
            "name": "gitgate",
            "version": env!("CARGO_PKG_VERSION"),
            "informationUri": "https://github.com/gitgate/gitgate",
            "rules": rule_list,
        }},
        "results": results,
        // The verdict: SARIF's own words (a run that could not check everything did not
        // execute successfully) and gitgate's.
        "invocations": [{
            "executionSuccessful": report.verdict() != Verdict::Error,
            "exitCode": report.exit_code(),
        }],
        "properties": {"verdict": report.verdict()},
    });
    json!({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]})
}

/// A relative path as a URI reference (forward slashes, no `./`).
fn uri(path: &str) -> String {
    path.trim_start_matches("./")
        .replace('\\', "/")
        .replace(' ', "%20")
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(report))?;
    writeln!(out)
}
