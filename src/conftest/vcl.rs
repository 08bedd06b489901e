//! Varnish's VCL as conftest's `vcl` parser (go-vcl's decoding into a map) gives it: each
//! declaration `TYPE NAME { ... }` under its type and name (`backend.app`, `acl.purge`), a body
//! of `.field = "value";` attributes as an object of them (a value that is not a string is
//! `null`, as go-vcl leaves it), a body of bare values (an ACL's entries) as their list, nested
//! declarations under their type (a list when the type repeats). The code of subroutines
//! (`sub vcl_recv { ... }`) is not read: its statements are skipped, its declaration stays.
//!
//! No Rust crate reads VCL; this is the small declaration grammar go-vcl reads.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Punct(char),
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(format!("line {line}: unclosed comment"));
                }
                i += 2;
            }
            '{' if chars.get(i + 1) == Some(&'"') => {
                // A long string: {"...."}
                let start = i + 2;
                let mut j = start;
                while j + 1 < chars.len() && !(chars[j] == '"' && chars[j + 1] == '}') {
                    j += 1;
                }
                if j + 1 >= chars.len() {
                    return Err(format!("line {line}: unclosed long string"));
                }
                let s: String = chars[start..j].iter().collect();
                line += s.matches('\n').count();
                out.push(Token::Str(s));
                i = j + 2;
            }
            '"' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '"' && chars[j] != '\n' {
                    j += 1;
                }
                if j >= chars.len() || chars[j] != '"' {
                    return Err(format!("line {line}: unclosed string"));
                }
                out.push(Token::Str(chars[start..j].iter().collect()));
                i = j + 1;
            }
            '{' | '}' | ';' | '=' | '(' | ')' | ',' => {
                out.push(Token::Punct(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !matches!(chars[i], '{' | '}' | ';' | '=' | '(' | ')' | ',' | '"')
                {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

/// One body's content, as go-vcl's traversal sorts it.
#[derive(Default)]
struct Body {
    attributes: Map<String, Value>,
    /// (type, labels, body)
    blocks: Vec<(String, Vec<String>, Body)>,
    flats: Vec<Value>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    /// Skips a statement this reader does not keep: to its `;`, or past its braces.
    fn skip_statement(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(t) = self.next() {
            match t {
                Token::Punct('{') => depth += 1,
                Token::Punct('}') if depth == 0 => {
                    self.at -= 1;
                    return Ok(());
                }
                Token::Punct('}') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Token::Punct(';') if depth == 0 => return Ok(()),
                _ => {}
            }
        }
        if depth > 0 {
            return Err("unclosed {".to_string());
        }
        Ok(())
    }

    /// A body up to its `}` (or the end, at the top).
    fn body(&mut self, top: bool) -> Result<Body, String> {
        let mut body = Body::default();
        loop {
            match self.peek().cloned() {
                None if top => return Ok(body),
                None => return Err("unclosed {".to_string()),
                Some(Token::Punct('}')) if !top => {
                    self.at += 1;
                    return Ok(body);
                }
                Some(Token::Punct(';')) => self.at += 1,
                Some(Token::Str(s)) => {
                    self.at += 1;
                    body.flats.push(Value::String(s));
                    self.skip_statement()?;
                }
                Some(Token::Word(w)) if w.starts_with('.') => {
                    self.at += 1;
                    let value = if self.peek() == Some(&Token::Punct('=')) {
                        self.at += 1;
                        match self.peek().cloned() {
                            Some(Token::Str(s)) => {
                                self.at += 1;
                                Value::String(s)
                            }
                            _ => Value::Null,
                        }
                    } else {
                        Value::Null
                    };
                    body.attributes
                        .insert(w.trim_start_matches('.').to_string(), value);
                    self.skip_statement()?;
                }
                Some(Token::Word(w)) => {
                    // A declaration `TYPE LABEL... {`, else a statement not kept.
                    let start = self.at;
                    let mut words = vec![w];
                    self.at += 1;
                    while let Some(Token::Word(l) | Token::Str(l)) = self.peek().cloned() {
                        words.push(l);
                        self.at += 1;
                    }
                    if self.peek() == Some(&Token::Punct('{')) && words.len() >= 2 {
                        self.at += 1;
                        let inner = self.body(false)?;
                        let kind = words.remove(0);
                        body.blocks.push((kind, words, inner));
                    } else if self.peek() == Some(&Token::Punct('=')) && top && words.len() == 1 {
                        self.at += 1;
                        let value = match self.next() {
                            Some(Token::Str(s) | Token::Word(s)) => Value::String(s),
                            _ => Value::Null,
                        };
                        body.attributes.insert(words.remove(0), value);
                        self.skip_statement()?;
                    } else {
                        self.at = start;
                        self.skip_statement()?;
                    }
                }
                Some(_) => self.skip_statement()?,
            }
        }
    }
}

/// A nested declaration: its labels and its body.
type Labeled = (Vec<String>, Body);

/// go-vcl's decoding of a declaration's body: an object of its attributes and nested blocks.
fn block_value(body: Body) -> Value {
    let mut out = body.attributes;
    let mut by_type: Vec<(String, Vec<Labeled>)> = Vec::new();
    for (kind, labels, inner) in body.blocks {
        match by_type.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, list)) => list.push((labels, inner)),
            None => by_type.push((kind, vec![(labels, inner)])),
        }
    }
    for (kind, mut blocks) in by_type {
        let value = if blocks.len() == 1 {
            block_value(blocks.remove(0).1)
        } else {
            Value::Array(
                blocks
                    .into_iter()
                    .map(|(labels, inner)| {
                        let mut v = block_value(inner);
                        for l in labels {
                            let mut m = Map::new();
                            m.insert(l, v);
                            v = Value::Object(m);
                        }
                        v
                    })
                    .collect(),
            )
        };
        out.insert(kind, value);
    }
    Value::Object(out)
}

/// A VCL document as go-vcl decodes it into a map.
pub fn vcl(text: &str) -> Result<Value, String> {
    let mut parser = Parser {
        tokens: lex(text)?,
        at: 0,
    };
    let top = parser.body(true)?;
    let mut out = top.attributes;
    for (kind, mut labels, inner) in top.blocks {
        let value = if inner.attributes.is_empty() && inner.blocks.is_empty() {
            Value::Array(inner.flats)
        } else {
            let mut v = block_value(inner);
            for l in labels.iter().skip(1) {
                let mut m = Map::new();
                m.insert(l.clone(), v);
                v = Value::Object(m);
            }
            v
        };
        let entry = out.entry(kind).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(labels.remove(0), value);
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn declarations_by_type_and_name() {
        let v = vcl(r#"vcl 4.1;
import std;
# the origin
backend origin {
    .host = "10.0.0.1";
    .port = "8080";
    .first_byte_timeout = 30s;
    .probe = {
        .url = "/health";
    }
}
acl local {
    "localhost";
    "10.0.0.0"/8;
}
sub vcl_recv {
    if (req.method == "PURGE") {
        return (purge);
    }
    set req.http.x = "y";
}
"#)
        .unwrap();
        assert_eq!(v["backend"]["origin"]["host"], json!("10.0.0.1"));
        assert_eq!(v["backend"]["origin"]["port"], json!("8080"));
        assert_eq!(v["backend"]["origin"]["first_byte_timeout"], Value::Null);
        assert_eq!(v["acl"]["local"], json!(["localhost", "10.0.0.0"]));
        assert!(v["sub"].get("vcl_recv").is_some(), "{v}");
    }

    #[test]
    fn broken_vcl_is_an_error() {
        assert!(vcl("backend a {\n  .host = \"x\";\n").is_err());
        assert!(vcl("backend a {\n  .host = \"x;\n}\n").is_err());
    }
}
