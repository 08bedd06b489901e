//! JUnit XML: one test suite, one test case per object checked (`path:line Kind ns/name`).
//! A case fails (`<failure>`) by what rejects it, and by its warnings under `--fail-on-warn`,
//! exactly as the exit code does; what could not be checked (a policy that failed) is an
//! `<error>`. Problems of files (invalid YAML) and of the pull request (an unsigned commit) are
//! cases of their own; a file that was not checked (a symbolic link, a submodule, a document
//! that is not an object) is a `<skipped>` case, so that nothing is left out in silence.

use std::io::Write;

use crate::decision::findings::{Item, Level, Report};

#[derive(Default)]
struct Case {
    name: String,
    classname: String,
    failures: Vec<String>,
    errors: Vec<String>,
    skipped: Vec<String>,
}

impl Case {
    fn add(&mut self, item: &Item, fail_on_warn: bool) {
        let text = format!("[{}] {}", item.policy, item.message);
        if item.unchecked {
            self.errors.push(text);
        } else if item.level == Level::Error || (fail_on_warn && item.level == Level::Warning) {
            self.failures.push(text);
        } else if item.object.is_none() {
            // A file that was not checked, or not fully (a chart that reads the cluster).
            self.skipped.push(text);
        }
    }
}

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    // The items of each object, found by (path, object) once: an audit has tens of thousands
    // of objects.
    let mut by_object: std::collections::BTreeMap<(&str, &str), Vec<&Item>> =
        std::collections::BTreeMap::new();
    for i in &report.items {
        if let Some(object) = i.object.as_deref() {
            by_object.entry((&i.path, object)).or_default().push(i);
        }
    }
    let mut cases: Vec<Case> = report
        .checked
        .iter()
        .map(|c| {
            let mut case = Case {
                name: format!("{} {}", c.operation, c.object),
                classname: format!("{}:{}", c.path, c.line),
                ..Case::default()
            };
            for i in by_object
                .get(&(c.path.as_str(), c.object.as_str()))
                .into_iter()
                .flatten()
            {
                case.add(i, report.fail_on_warn);
            }
            case
        })
        .collect();
    for i in report.items.iter().filter(|i| i.object.is_none()) {
        let mut case = Case {
            name: if i.path.is_empty() {
                "pull request commits".to_string()
            } else {
                format!("read {}", i.path)
            },
            classname: format!("{}:{}", i.path, i.line),
            ..Case::default()
        };
        case.add(i, report.fail_on_warn);
        if !(case.failures.is_empty() && case.errors.is_empty() && case.skipped.is_empty()) {
            cases.push(case);
        }
    }
    // Items about an object that no checked entry names (an audit's object that Git holds
    // and the cluster lacks) are cases of their own, so that nothing reported is left out.
    let checked: std::collections::HashSet<(&str, &str)> = report
        .checked
        .iter()
        .map(|c| (c.path.as_str(), c.object.as_str()))
        .collect();
    for ((path, object), items) in &by_object {
        if checked.contains(&(*path, *object)) {
            continue;
        }
        let mut case = Case {
            name: object.to_string(),
            classname: format!("{path}:{}", items[0].line),
            ..Case::default()
        };
        for i in items {
            case.add(i, report.fail_on_warn);
        }
        if !(case.failures.is_empty() && case.errors.is_empty()) {
            cases.push(case);
        }
    }
    let failures = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let errors = cases.iter().filter(|c| !c.errors.is_empty()).count();
    let skipped = cases
        .iter()
        .filter(|c| c.failures.is_empty() && c.errors.is_empty() && !c.skipped.is_empty())
        .count();
    let tests = cases.len();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="gitgate check" tests="{tests}" failures="{failures}" errors="{errors}">"#
    )?;
    writeln!(
        out,
        r#"  <testsuite name="gitgate check" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}">"#
    )?;
    for c in &cases {
        let (name, classname) = (xml(&c.name), xml(&c.classname));
        if c.failures.is_empty() && c.errors.is_empty() && c.skipped.is_empty() {
            writeln!(
                out,
                r#"    <testcase name="{name}" classname="{classname}"/>"#
            )?;
            continue;
        }
        writeln!(
            out,
            r#"    <testcase name="{name}" classname="{classname}">"#
        )?;
        for f in &c.failures {
            let f = xml(f);
            writeln!(
                out,
                r#"      <failure message="{f}" type="policy">{f}</failure>"#
            )?;
        }
        for e in &c.errors {
            let e = xml(e);
            writeln!(
                out,
                r#"      <error message="{e}" type="unchecked">{e}</error>"#
            )?;
        }
        if c.failures.is_empty() && c.errors.is_empty() {
            let why = xml(&c.skipped.join("; "));
            writeln!(out, r#"      <skipped message="{why}"/>"#)?;
        }
        writeln!(out, "    </testcase>")?;
    }
    writeln!(out, "  </testsuite>\n</testsuites>")
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot hold.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
