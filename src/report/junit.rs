//! JUnit XML: one test suite, one test case per object checked (`path:line Kind ns/name`),
//! failed by its errors; problems of files (invalid YAML) are failed cases of their own.

use std::io::Write;

use crate::check::{Level, Report};

pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    struct Case {
        name: String,
        classname: String,
        failures: Vec<String>,
    }
    let mut cases: Vec<Case> = report
        .checked
        .iter()
        .map(|c| Case {
            name: format!("{} {}", c.operation, c.object),
            classname: format!("{}:{}", c.path, c.line),
            failures: report
                .items
                .iter()
                .filter(|i| {
                    i.level == Level::Error
                        && i.path == c.path
                        && i.object.as_deref() == Some(c.object.as_str())
                })
                .map(|i| format!("[{}] {}", i.policy, i.message))
                .collect(),
        })
        .collect();
    for i in report
        .items
        .iter()
        .filter(|i| i.level == Level::Error && i.object.is_none())
    {
        cases.push(Case {
            name: if i.path.is_empty() {
                "pull request commits".to_string()
            } else {
                format!("read {}", i.path)
            },
            classname: format!("{}:{}", i.path, i.line),
            failures: vec![format!("[{}] {}", i.policy, i.message)],
        });
    }
    let failures = cases.iter().filter(|c| !c.failures.is_empty()).count();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="gitgate check" tests="{}" failures="{failures}" errors="0">"#,
        cases.len()
    )?;
    writeln!(
        out,
        r#"  <testsuite name="gitgate check" tests="{}" failures="{failures}" errors="0" skipped="0">"#,
        cases.len()
    )?;
    for c in &cases {
        if c.failures.is_empty() {
            writeln!(
                out,
                r#"    <testcase name="{}" classname="{}"/>"#,
                xml(&c.name),
                xml(&c.classname)
            )?;
        } else {
            writeln!(
                out,
                r#"    <testcase name="{}" classname="{}">"#,
                xml(&c.name),
                xml(&c.classname)
            )?;
            for f in &c.failures {
                writeln!(
                    out,
                    r#"      <failure message="{}" type="policy">{}</failure>"#,
                    xml(f),
                    xml(f)
                )?;
            }
            writeln!(out, "    </testcase>")?;
        }
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
