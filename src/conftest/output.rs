//! conftest mode's output: conftest's `stdout` (standard), `tap` and `table` formats as conftest
//! prints them, and the conversion to gitgate's [`Report`] for `json`, `sarif`, `junit` and
//! `github`.

use std::io::Write;

use super::engine::Engine;
use super::{CheckResult, TestOutcome};
use crate::decision::findings::{Checked, Item, Level, Report};

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn indicator(r: &CheckResult) -> (String, String) {
    let file = if r.filename == "-" {
        "-".to_string()
    } else {
        format!("- {}", r.filename)
    };
    (file, format!("- {} -", r.namespace))
}

/// Totals: tests, passed, warnings, failures, exceptions.
pub fn totals(results: &[CheckResult]) -> (usize, usize, usize, usize, usize) {
    let f: usize = results.iter().map(|r| r.failures.len()).sum();
    let w: usize = results.iter().map(|r| r.warnings.len()).sum();
    let e: usize = results.iter().map(|r| r.exceptions.len()).sum();
    let s: usize = results.iter().map(|r| r.successes).sum();
    (f + w + e + s, s, w, f, e)
}

/// The summary line: `5 tests, 4 passed, 1 warning, 0 failures, 0 exceptions`.
pub fn summary(results: &[CheckResult]) -> String {
    let (t, s, w, f, e) = totals(results);
    format!(
        "{}, {s} passed, {}, {}, {}",
        plural(t, "test"),
        plural(w, "warning"),
        plural(f, "failure"),
        plural(e, "exception")
    )
}

/// conftest's standard output.
pub fn standard(
    out: &mut dyn Write,
    results: &[CheckResult],
    color: bool,
    suppress_exceptions: bool,
) -> std::io::Result<()> {
    for r in results {
        for t in &r.traces {
            writeln!(out, "{}", paint(color, "34", &format!("TRAC  {t}")))?;
        }
    }
    for r in results {
        for p in &r.prints {
            writeln!(out, "{}  {p}", paint(color, "34", "PRNT "))?;
        }
    }
    for r in results {
        let (file, ns) = indicator(r);
        for w in &r.warnings {
            writeln!(
                out,
                "{} {file} {ns} {}",
                paint(color, "33", "WARN"),
                w.message
            )?;
        }
        for f in &r.failures {
            writeln!(
                out,
                "{} {file} {ns} {}",
                paint(color, "31", "FAIL"),
                f.message
            )?;
        }
        if !suppress_exceptions {
            for e in &r.exceptions {
                writeln!(
                    out,
                    "{} {file} {ns} {}",
                    paint(color, "36", "EXCP"),
                    e.message
                )?;
            }
        }
    }
    let (_, _, w, f, e) = totals(results);
    let code = if f > 0 {
        "31"
    } else if w > 0 {
        "33"
    } else if e > 0 {
        "36"
    } else {
        "32"
    };
    writeln!(out)?;
    writeln!(out, "{}", paint(color, code, &summary(results)))
}

/// conftest's TAP output.
pub fn tap(out: &mut dyn Write, results: &[CheckResult]) -> std::io::Result<()> {
    for r in results {
        let (file, ns) = indicator(r);
        let total = r.successes + r.failures.len() + r.warnings.len() + r.exceptions.len();
        if total == 0 {
            continue;
        }
        writeln!(out, "1..{total}")?;
        let mut n = 1;
        for f in &r.failures {
            writeln!(out, "not ok {n} {file} {ns} {}", f.message)?;
            n += 1;
        }
        if !r.warnings.is_empty() {
            writeln!(out, "# warnings")?;
            for w in &r.warnings {
                writeln!(out, "not ok {n} {file} {ns} {}", w.message)?;
                n += 1;
            }
        }
        if !r.exceptions.is_empty() {
            writeln!(out, "# exceptions")?;
            for e in &r.exceptions {
                writeln!(out, "ok {n} {file} {ns} {}", e.message)?;
                n += 1;
            }
        }
        if r.successes > 0 {
            writeln!(out, "# successes")?;
            for _ in 0..r.successes {
                writeln!(out, "ok {n} {file} {ns} SUCCESS")?;
                n += 1;
            }
        }
    }
    Ok(())
}

/// conftest's table output.
pub fn table(out: &mut dyn Write, results: &[CheckResult]) -> std::io::Result<()> {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for r in results {
        let row = |kind: &str, message: &str| {
            [
                kind.to_string(),
                r.filename.clone(),
                r.namespace.clone(),
                message.to_string(),
            ]
        };
        for _ in 0..r.successes {
            rows.push(row("success", "SUCCESS"));
        }
        rows.extend(r.exceptions.iter().map(|o| row("exception", &o.message)));
        rows.extend(r.warnings.iter().map(|o| row("warning", &o.message)));
        rows.extend(r.failures.iter().map(|o| row("failure", &o.message)));
    }
    if rows.is_empty() {
        return Ok(());
    }
    write_table(out, &["RESULT", "FILE", "NAMESPACE", "MESSAGE"], &rows)
}

fn write_table(
    out: &mut dyn Write,
    header: &[&str; 4],
    rows: &[[String; 4]],
) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::from("│");
        for (c, w) in cells.iter().zip(widths) {
            s.push_str(&format!(" {c:<w$} │"));
        }
        s
    };
    writeln!(out, "{}", line(*header))?;
    for r in rows {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3]]))?;
    }
    Ok(())
}

/// The results as gitgate's report (for `json`, `sarif`, `junit`, `github`): failures are
/// errors, warnings warnings, exceptions notes, each at its file.
pub fn to_report(results: &[CheckResult], fail_on_warn: bool) -> Report {
    let mut report = Report {
        fail_on_warn,
        ..Default::default()
    };
    let mut files: Vec<&str> = Vec::new();
    for r in results {
        if !files.contains(&r.filename.as_str()) {
            files.push(&r.filename);
        }
        report.checked.push(Checked {
            path: r.filename.clone(),
            line: 1,
            operation: "CHECK".to_string(),
            object: format!("namespace {}", r.namespace),
        });
        let item = |level: Level, message: &str| Item {
            path: r.filename.clone(),
            line: 1,
            level,
            policy: r.namespace.clone(),
            message: message.to_string(),
            operation: None,
            object: None,
            unchecked: false,
        };
        report
            .items
            .extend(r.failures.iter().map(|o| item(Level::Error, &o.message)));
        report
            .items
            .extend(r.warnings.iter().map(|o| item(Level::Warning, &o.message)));
        report
            .items
            .extend(r.exceptions.iter().map(|o| item(Level::Note, &o.message)));
    }
    report.files = files.len();
    report
}

/// Rules of other packages the rules of `namespace` name through their imports
/// (`import data.kubernetes` then `kubernetes.is_service` → `data.kubernetes.is_service`).
pub fn references(engine: &Engine, namespace: &str) -> Vec<String> {
    let import = regex::Regex::new(
        r"(?m)^import\s+data\.([A-Za-z0-9_.]+)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?",
    )
    .expect("valid regex");
    let mut out: Vec<String> = Vec::new();
    for m in engine.modules.iter().filter(|m| m.package == namespace) {
        let Ok(text) = std::fs::read_to_string(&m.file) else {
            continue;
        };
        let text = super::strict::code(&text);
        for c in import.captures_iter(&text) {
            let target = c[1].to_string();
            let alias = c
                .get(2)
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|| target.rsplit('.').next().unwrap_or("").to_string());
            let uses = regex::Regex::new(&format!(
                r"(^|[^A-Za-z0-9_.]){}\.([A-Za-z_][A-Za-z0-9_]*)",
                regex::escape(&alias)
            ))
            .expect("valid regex");
            for u in uses.captures_iter(&text) {
                let r = format!("data.{target}.{}", &u[2]);
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// `verify`/`test` in conftest mode, standard output: failures, prints, the summary.
pub fn tests_standard(
    out: &mut dyn Write,
    outcomes: &[TestOutcome],
    color: bool,
    trace: Option<&Engine>,
) -> std::io::Result<()> {
    if let Some(engine) = trace {
        for o in outcomes {
            writeln!(out, "TRAC  file: {} | query: {}", o.file, o.name)?;
            for r in references(engine, &o.namespace) {
                writeln!(out, "TRAC  | refers to {r}")?;
            }
        }
    }
    for o in outcomes {
        for p in &o.prints {
            writeln!(out, "{}  {p}", paint(color, "34", "PRNT "))?;
        }
    }
    for o in outcomes.iter().filter(|o| !o.passed) {
        let detail = o
            .error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{} - {} - {} - {}{detail}",
            paint(color, "31", "FAIL"),
            o.file,
            o.namespace,
            o.name
        )?;
    }
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let failed = outcomes.len() - passed;
    let line = format!(
        "{}, {passed} passed, 0 warnings, {}, 0 exceptions",
        plural(outcomes.len(), "test"),
        plural(failed, "failure")
    );
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        paint(color, if failed > 0 { "31" } else { "32" }, &line)
    )
}

/// `--report fails|notes|full`: OPA's test report (each test's verdict, its print output,
/// `PASS: n/m` or `FAIL: n/m`).
pub fn tests_report(
    out: &mut dyn Write,
    outcomes: &[TestOutcome],
    which: &str,
) -> std::io::Result<()> {
    let failed: Vec<&TestOutcome> = outcomes.iter().filter(|o| !o.passed).collect();
    let rule = "-".repeat(80);
    if !failed.is_empty() {
        writeln!(out, "FAILURES\n{rule}")?;
        for o in &failed {
            writeln!(out, "{}: FAIL", o.name)?;
            if let Some(e) = &o.error {
                writeln!(out, "  {e}")?;
            }
            if which != "fails" {
                for n in &o.notes {
                    writeln!(out, "  | Note {n:?}")?;
                }
            }
            writeln!(out)?;
        }
    }
    writeln!(out, "SUMMARY\n{rule}")?;
    let mut file = "";
    for o in outcomes {
        if o.file != file {
            file = &o.file;
            writeln!(out, "{file}:")?;
        }
        writeln!(
            out,
            "{}: {}",
            o.name,
            if o.passed { "PASS" } else { "FAIL" }
        )?;
        for p in &o.prints {
            writeln!(out, "  {p}")?;
        }
    }
    writeln!(out, "{rule}")?;
    let passed = outcomes.len() - failed.len();
    if passed > 0 {
        writeln!(out, "PASS: {passed}/{}", outcomes.len())?;
    }
    if !failed.is_empty() {
        writeln!(out, "FAIL: {}/{}", failed.len(), outcomes.len())?;
    }
    Ok(())
}

/// `verify -o tap|table` in conftest mode: each test a success or a failure.
pub fn tests_as_results(outcomes: &[TestOutcome]) -> Vec<CheckResult> {
    outcomes
        .iter()
        .map(|o| CheckResult {
            filename: o.file.clone(),
            namespace: o.namespace.clone(),
            successes: usize::from(o.passed),
            failures: if o.passed {
                Vec::new()
            } else {
                vec![super::Outcome {
                    message: o.name.clone(),
                    metadata: Default::default(),
                }]
            },
            ..Default::default()
        })
        .collect()
}
