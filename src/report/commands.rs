//! The printers of the commands whose results are not a check report: `verify` (suites,
//! as `gator verify` prints them), `test` (as `opa test` does) and `policies`.

use std::io::Write;
use std::time::Duration;

use crate::decision::suite::SuiteResult;
use crate::policy::PolicySet;
use crate::policy::unit::{FileCoverage, Mode, Outcome, Report};

/// `gitgate verify`: each suite, then the totals (tests, cases, suites failed, with errors).
pub fn suites(
    out: &mut impl Write,
    results: &[SuiteResult],
    verbose: bool,
    (tests, cases, failed, errors): (usize, usize, usize, usize),
) -> std::io::Result<()> {
    for r in results {
        suite(out, r, verbose)?;
    }
    writeln!(
        out,
        "{} suites, {} tests, {} cases: {} suites passed, {} failed, {} with errors",
        results.len(),
        tests,
        cases,
        results.len()
            - results
                .iter()
                .filter(|r| r.has_failures() || r.has_errors())
                .count(),
        failed,
        errors
    )
}

fn suite(out: &mut impl Write, r: &SuiteResult, verbose: bool) -> std::io::Result<()> {
    let ms = |d: Duration| format!("{:.3}s", d.as_secs_f64());
    if let Some(e) = &r.error {
        writeln!(out, "ERROR {}\n    {e}", r.file)?;
        return Ok(());
    }
    let bad = r.has_failures() || r.has_errors();
    for t in &r.tests {
        let t_bad = t.error.is_some()
            || t.cases
                .iter()
                .any(|c| c.error.is_some() || !c.failures.is_empty());
        if t.skipped {
            if verbose {
                writeln!(out, "    --- SKIP: {}", t.name)?;
            }
            continue;
        }
        if !(t_bad || verbose) {
            continue;
        }
        let status = if t_bad { "FAIL" } else { "PASS" };
        writeln!(out, "    --- {status}: {} ({})", t.name, ms(t.duration))?;
        if let Some(e) = &t.error {
            writeln!(out, "        error: {e}")?;
        }
        for c in &t.cases {
            let status = if c.skipped {
                "SKIP"
            } else if c.error.is_some() || !c.failures.is_empty() {
                "FAIL"
            } else if verbose {
                "PASS"
            } else {
                continue;
            };
            writeln!(out, "        --- {status}: {} ({})", c.name, ms(c.duration))?;
            if let Some(e) = &c.error {
                writeln!(out, "            error: {e}")?;
            }
            for f in &c.failures {
                writeln!(out, "            {f}")?;
            }
        }
    }
    let (tests, cases) = r.counts();
    let status = if bad { "FAIL" } else { "ok  " };
    writeln!(
        out,
        "{status} {}\t{} tests, {} cases\t{}",
        r.file,
        tests,
        cases,
        ms(r.duration)
    )
}

/// What `gitgate test` says when it runs one program per policy directory.
pub const PER_DIRECTORY: &str = "policy directories that are not inside one another define the same package (the gatekeeper-library layout): each top-most directory with Rego files is tested as its own program";

/// `gitgate test`, as `opa test` prints it: failures, errors and skips (passes too with `-v`)
/// under their file, the sub-cases of a parameterized test under it, `print()` output under
/// its test (`-v`, or when it fails), then the coverage per file when asked for, and the
/// counts (a parameterized test counts each sub-case, as OPA counts them).
pub fn tests(out: &mut impl Write, report: &Report, verbose: bool) -> std::io::Result<()> {
    if report.mode == Mode::PerDirectory {
        writeln!(out, "note: {PER_DIRECTORY}")?;
    }
    for e in &report.errors {
        writeln!(out, "ERROR: {e}")?;
    }
    let (mut pass, mut fail, mut skip, mut error) = (0, 0, 0, report.errors.len());
    let mut last_file = "";
    for t in &report.cases {
        match &t.outcome {
            Outcome::Skip => skip += 1,
            Outcome::Error(_) => error += 1,
            _ if !t.sub.is_empty() => {
                let failed = t.sub.iter().filter(|s| !s.pass).count();
                fail += failed;
                pass += t.sub.len() - failed;
            }
            Outcome::Pass => pass += 1,
            Outcome::Fail => fail += 1,
        }
        let label = match &t.outcome {
            Outcome::Pass if !verbose => continue,
            Outcome::Pass => "PASS".to_string(),
            Outcome::Fail => "FAIL".to_string(),
            Outcome::Skip => "SKIPPED".to_string(),
            Outcome::Error(e) => format!("ERROR\n  {e}"),
        };
        if t.file != last_file {
            writeln!(out, "{}:", t.file)?;
            last_file = &t.file;
        }
        writeln!(out, "{}: {} ({:.3?})", t.rule, label, t.duration)?;
        for sub in &t.sub {
            if verbose || !sub.pass {
                let status = if sub.pass { "PASS" } else { "FAIL" };
                writeln!(out, "  {}: {status}", sub.name)?;
            }
        }
        if !t.output.is_empty() {
            writeln!(out)?;
            for line in &t.output {
                writeln!(out, "  {line}")?;
            }
            writeln!(out)?;
        }
    }
    if let Some(coverage) = &report.coverage {
        writeln!(out, "{}", "-".repeat(80))?;
        let (covered, total) = coverage_counts(coverage.values());
        for (file, c) in coverage {
            let (n, all) = coverage_counts(std::iter::once(c));
            writeln!(
                out,
                "{file}: {:.1}% covered ({n}/{all} lines){}",
                percent(n, all),
                if c.not_covered.is_empty() {
                    String::new()
                } else {
                    format!("; not covered: {}", ranges(&c.not_covered))
                }
            )?;
        }
        writeln!(
            out,
            "coverage: {:.1}% ({covered}/{total} lines)",
            percent(covered, total)
        )?;
    }
    writeln!(out, "{}", "-".repeat(80))?;
    let total = pass + fail + skip + error;
    if total == 0 {
        writeln!(out, "no tests found")?;
    }
    for (label, n) in [
        ("PASS", pass),
        ("FAIL", fail),
        ("SKIPPED", skip),
        ("ERROR", error),
    ] {
        if n > 0 {
            writeln!(out, "{label}: {n}/{total}")?;
        }
    }
    Ok(())
}

fn coverage_counts<'a>(files: impl Iterator<Item = &'a FileCoverage>) -> (usize, usize) {
    files.fold((0, 0), |(c, t), f| {
        (
            c + f.covered.len(),
            t + f.covered.len() + f.not_covered.len(),
        )
    })
}

fn percent(n: usize, all: usize) -> f64 {
    if all == 0 {
        100.0
    } else {
        n as f64 * 100.0 / all as f64
    }
}

/// Lines as ranges (`3-5, 9`).
fn ranges(lines: &std::collections::BTreeSet<u32>) -> String {
    range_pairs(lines)
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn range_pairs(lines: &std::collections::BTreeSet<u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &l in lines {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == l => *end = l,
            _ => out.push((l, l)),
        }
    }
    out
}

/// `gitgate test -f json`: OPA's JSON report, one object per test (`package`, `name`,
/// `location`, `fail`/`skip`/`error`, `duration` in nanoseconds, `output` as base64,
/// `sub_results`).
pub fn tests_json(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    use base64::Engine as _;
    let mut items: Vec<serde_json::Value> = report
        .errors
        .iter()
        .map(|e| serde_json::json!({"error": {"message": e}}))
        .collect();
    for t in &report.cases {
        let mut o = serde_json::json!({
            "location": {"file": t.file, "row": t.line, "col": 1},
            "package": t.package,
            "name": t.name,
            "duration": t.duration.as_nanos() as u64,
        });
        match &t.outcome {
            Outcome::Pass => {}
            Outcome::Fail => o["fail"] = true.into(),
            Outcome::Skip => o["skip"] = true.into(),
            Outcome::Error(e) => o["error"] = serde_json::json!({"message": e}),
        }
        if !t.output.is_empty() {
            let text: String = t.output.iter().map(|l| format!("{l}\n")).collect();
            o["output"] = base64::engine::general_purpose::STANDARD
                .encode(text)
                .into();
        }
        if !t.sub.is_empty() {
            let mut subs = serde_json::Map::new();
            for sub in &t.sub {
                let mut v = serde_json::json!({"name": sub.name});
                if !sub.pass {
                    v["fail"] = true.into();
                }
                subs.insert(sub.name.clone(), v);
            }
            o["sub_results"] = subs.into();
        }
        items.push(o);
    }
    write_data(out, &serde_json::Value::Array(items), false)
}

/// `gitgate test --coverage -f json`: OPA's coverage report (per file, covered and not
/// covered line ranges, counts and percentage; then the totals).
pub fn coverage_json(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let empty = Default::default();
    let coverage = report.coverage.as_ref().unwrap_or(&empty);
    let spans = |lines: &std::collections::BTreeSet<u32>| {
        range_pairs(lines)
            .into_iter()
            .map(|(a, b)| serde_json::json!({"start": {"row": a}, "end": {"row": b}}))
            .collect::<Vec<_>>()
    };
    let mut files = serde_json::Map::new();
    for (file, c) in coverage {
        let (n, all) = coverage_counts(std::iter::once(c));
        files.insert(
            file.clone(),
            serde_json::json!({
                "covered": spans(&c.covered),
                "not_covered": spans(&c.not_covered),
                "covered_lines": n,
                "not_covered_lines": all - n,
                "coverage": (percent(n, all) * 100.0).round() / 100.0,
            }),
        );
    }
    let (n, all) = coverage_counts(coverage.values());
    let value = serde_json::json!({
        "files": files,
        "covered_lines": n,
        "not_covered_lines": all - n,
        "coverage": (percent(n, all) * 100.0).round() / 100.0,
    });
    write_data(out, &value, false)
}

/// `gitgate verify -o json|yaml`: each suite with its tests and cases.
pub fn suites_value(results: &[SuiteResult]) -> serde_json::Value {
    let ms = |d: Duration| d.as_secs_f64();
    results
        .iter()
        .map(|r| {
            serde_json::json!({
                "suite": r.file,
                "error": r.error,
                "duration": ms(r.duration),
                "tests": r.tests.iter().map(|t| serde_json::json!({
                    "name": t.name,
                    "skipped": t.skipped,
                    "error": t.error,
                    "duration": ms(t.duration),
                    "cases": t.cases.iter().map(|c| serde_json::json!({
                        "name": c.name,
                        "skipped": c.skipped,
                        "failures": c.failures,
                        "error": c.error,
                        "duration": ms(c.duration),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A JSON value, pretty, or as YAML.
pub fn write_data(
    out: &mut impl Write,
    value: &serde_json::Value,
    yaml: bool,
) -> std::io::Result<()> {
    let text = if yaml {
        serde_saphyr::to_string(value).map_err(std::io::Error::other)?
    } else {
        serde_json::to_string_pretty(value).map_err(std::io::Error::other)?
    };
    writeln!(out, "{}", text.trim_end())
}

/// `gitgate policies`: documents skipped, expansion templates and policies, one per line;
/// `verbose` adds, under each policy, the engine that evaluates it (and why not the VM).
pub fn policies(out: &mut impl Write, set: &PolicySet, verbose: bool) -> std::io::Result<()> {
    for s in &set.skipped {
        writeln!(out, "skipped: {s}")?;
    }
    for e in &set.expansions {
        writeln!(
            out,
            "{:<28} {:<7} {:<10} {} ({}:{})",
            e.name,
            e.enforcement.map_or("-", |a| a.as_str()),
            "expansion",
            e.describe(),
            e.file,
            e.line
        )?;
    }
    for p in set.policies() {
        writeln!(
            out,
            "{:<28} {:<7} {:<10} {}",
            p.name,
            p.enforcement.as_str(),
            format!("{:?}", p.flavor).to_lowercase(),
            p.title.as_deref().unwrap_or(&p.origin)
        )?;
        if verbose {
            writeln!(out, "    engine: {}", p.engine().describe())?;
        }
    }
    Ok(())
}
