//! HCL as conftest's two parsers give it, read by hcl-rs:
//!
//! - `hcl2` (the parser of `.tf`, `.tfvars`, `.hcl`): hcl2json's shape. A block nests its labels
//!   as objects and its body is the list of the bodies of that name (`resource.aws_s3_bucket.b ==
//!   [{...}]`); literals are JSON values, a quoted template is its text, any other expression its
//!   source wrapped as `${...}`.
//! - `hcl1` (HCL 1's decoding): every block and every object value is a list of objects, each
//!   label one more level of them (`provider[0].google[0].project`).

use hcl::{BlockLabel, Body, Expression, ObjectKey, Structure, TemplateExpr};
use serde_json::{Map, Value};

fn parse(text: &str) -> Result<Body, String> {
    hcl::parse(text).map_err(|e| e.to_string())
}

fn label(l: &BlockLabel) -> String {
    l.as_str().to_string()
}

/// A quoted template's text with its escapes read (`\"`, `\\`, `\n`, `\t`, `\r`); its
/// interpolations (`${...}`) stay as written, as hcl2json keeps them.
fn template_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn object_key(k: &ObjectKey) -> String {
    match k {
        ObjectKey::Identifier(i) => i.as_str().to_string(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        ObjectKey::Expression(Expression::TemplateExpr(t)) => match t.as_ref() {
            TemplateExpr::QuotedString(s) => template_text(s),
            TemplateExpr::Heredoc(h) => h.template.clone(),
        },
        ObjectKey::Expression(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

/// An expression as hcl2json converts it; `objects_as_lists` gives HCL 1's decoding of objects.
fn expression(e: &Expression, objects_as_lists: bool) -> Value {
    match e {
        Expression::Null => Value::Null,
        Expression::Bool(b) => Value::Bool(*b),
        Expression::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Expression::String(s) => Value::String(s.clone()),
        Expression::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| expression(i, objects_as_lists))
                .collect(),
        ),
        Expression::Object(object) => {
            let map: Map<String, Value> = object
                .iter()
                .map(|(k, v)| (object_key(k), expression(v, objects_as_lists)))
                .collect();
            if objects_as_lists {
                Value::Array(vec![Value::Object(map)])
            } else {
                Value::Object(map)
            }
        }
        Expression::TemplateExpr(t) => Value::String(match t.as_ref() {
            TemplateExpr::QuotedString(s) => template_text(s),
            TemplateExpr::Heredoc(h) => h.template.clone(),
        }),
        other => Value::String(format!("${{{other}}}")),
    }
}

/// hcl2json's conversion of a body.
fn body2(body: &Body) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                out.insert(a.key.as_str().to_string(), expression(&a.expr, false));
            }
            Structure::Block(b) => {
                let mut at = &mut out;
                let mut key = b.identifier.as_str().to_string();
                for l in &b.labels {
                    let entry = at
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    let Value::Object(next) = entry else {
                        return Err(format!(
                            "block {key:?} is both a block with labels and one without"
                        ));
                    };
                    at = next;
                    key = label(l);
                }
                let value = Value::Object(body2(&b.body)?);
                match at
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(vec![]))
                {
                    Value::Array(list) => list.push(value),
                    _ => {
                        return Err(format!(
                            "block {key:?} is both a block with labels and one without"
                        ));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// HCL 1's decoding of a body: blocks and objects are lists of objects.
fn body1(body: &Body) -> Map<String, Value> {
    let mut out = Map::new();
    for s in body.iter() {
        let (key, value) = match s {
            Structure::Attribute(a) => (a.key.as_str().to_string(), expression(&a.expr, true)),
            Structure::Block(b) => {
                let mut value = Value::Array(vec![Value::Object(body1(&b.body))]);
                for l in b.labels.iter().rev() {
                    let mut m = Map::new();
                    m.insert(label(l), value);
                    value = Value::Array(vec![Value::Object(m)]);
                }
                (b.identifier.as_str().to_string(), value)
            }
        };
        match (out.get_mut(&key), value) {
            (Some(Value::Array(list)), Value::Array(more)) => list.extend(more),
            (_, value) => {
                out.insert(key, value);
            }
        }
    }
    out
}

/// `hcl2`: hcl2json's JSON of an HCL document.
pub fn hcl2(text: &str) -> Result<Value, String> {
    Ok(Value::Object(body2(&parse(text)?)?))
}

/// `hcl1`: HCL 1's decoding of a document.
pub fn hcl1(text: &str) -> Result<Value, String> {
    Ok(Value::Object(body1(&parse(text)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = r#"
provider "cloud" {
  region = "eu-1"
}
resource "bucket" "logs" {
  name = "logs-${var.env}"
  size = 3
  tags = { team = "a" }
  rule {
    days = 30
  }
}
resource "bucket" "data" {
  versioning = true
}
count = length(var.x)
"#;

    #[test]
    fn hcl2_is_hcl2json() {
        let v = hcl2(DOC).unwrap();
        assert_eq!(v["provider"]["cloud"], json!([{"region": "eu-1"}]));
        let logs = &v["resource"]["bucket"]["logs"][0];
        assert_eq!(logs["name"], json!("logs-${var.env}"));
        assert_eq!(logs["size"], json!(3));
        assert_eq!(logs["tags"], json!({"team": "a"}));
        assert_eq!(logs["rule"], json!([{"days": 30}]));
        assert_eq!(
            v["resource"]["bucket"]["data"],
            json!([{"versioning": true}])
        );
        assert_eq!(v["count"], json!("${length(var.x)}"));
    }

    #[test]
    fn hcl1_is_lists_of_objects() {
        let v = hcl1(DOC).unwrap();
        assert_eq!(v["provider"][0]["cloud"][0]["region"], json!("eu-1"));
        assert_eq!(v["resource"].as_array().unwrap().len(), 2);
        let logs = &v["resource"][0]["bucket"][0]["logs"][0];
        assert_eq!(logs["tags"], json!([{"team": "a"}]));
        assert_eq!(logs["rule"], json!([{"days": 30}]));
    }

    #[test]
    fn invalid_hcl_is_an_error() {
        assert!(hcl2("resource \"a\" {").is_err());
        assert!(hcl1("= 1").is_err());
    }
}
