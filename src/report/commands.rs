//! The printers of the commands whose results are not a check report: `verify` (suites,
//! as `gator verify` prints them), `test` (as `opa test` does) and `policies`.

use std::io::Write;
use std::time::Duration;

use crate::decision::suite::SuiteResult;
use crate::policy::PolicySet;
use crate::policy::unit::{Outcome, TestCase};

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

/// `gitgate test`: failures, errors and skips (passes too with `-v`) under their file, then the
/// counts.
pub fn tests(out: &mut impl Write, results: &[TestCase], verbose: bool) -> std::io::Result<()> {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|t| f(&t.outcome)).count();
    let pass = count(|o| matches!(o, Outcome::Pass));
    let fail = count(|o| matches!(o, Outcome::Fail));
    let skip = count(|o| matches!(o, Outcome::Skip));
    let error = count(|o| matches!(o, Outcome::Error(_)));
    let total = results.len();
    let mut last_file = "";
    for t in results {
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
    }
    writeln!(out, "{}", "-".repeat(80))?;
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
