//! The fields of a text log line, so that a line can be parsed (logfmt): `key=value`, with the
//! value quoted (and escaped) whenever it is empty or holds a space, `=`, a quote or a control
//! character; strings are always quoted, as tracing-subscriber's own format quotes them.
//! `reason=INC-4711: CVE follows` would read as two fields; it is `reason="INC-4711: CVE follows"`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// The `FormatFields` of the text format.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fields;

impl<'a> MakeVisitor<Writer<'a>> for Fields {
    type Visitor = Visitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        Visitor {
            writer: target,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's (or span's) fields.
pub struct Visitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn field(&mut self, field: &Field, value: &str, always_quote: bool) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // Metadata of `log` records, which the formatter already wrote.
        if name.starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            if always_quote || needs_quotes(value) {
                write!(self.writer, "{separator}{name}={value:?}")
            } else {
                write!(self.writer, "{separator}{name}={value}")
            }
        };
    }
}

/// Whether a rendered value must be quoted to be read back as one value. A value that is
/// already one quoted string (a `?` string field: `"a b"`) is left as it is.
pub fn needs_quotes(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    if is_quoted(value) {
        return false;
    }
    value
        .chars()
        .any(|c| c.is_whitespace() || c == '=' || c == '"' || c.is_control())
}

/// One Rust-quoted string: starts and ends with a quote, and every quote between is escaped.
fn is_quoted(value: &str) -> bool {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return false,
            c if c.is_control() => return false,
            _ => {}
        }
    }
    !escaped
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value, field.name() != "message");
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, &value.to_string(), false);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.field(field, &text, false);
    }
}

impl VisitOutput<fmt::Result> for Visitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for Visitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::needs_quotes;

    #[test]
    fn values_that_would_split_are_quoted() {
        assert!(needs_quotes(""));
        assert!(needs_quotes("INC-4711: CVE follows"));
        assert!(needs_quotes("a=b"));
        assert!(needs_quotes("say \"hi\""));
        assert!(needs_quotes("\"a\" and \"b\""));
        assert!(!needs_quotes("\"already quoted\""));
        assert!(!needs_quotes("\"with \\\" escaped\""));
        assert!(!needs_quotes(
            "system:serviceaccount:flux-system:kustomize-controller"
        ));
        assert!(!needs_quotes("latest-tag:deny,provenance:dryrun"));
    }
}
