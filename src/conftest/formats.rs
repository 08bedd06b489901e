//! The small configuration formats conftest reads, read as its parsers give them: INI (sections
//! of typed values, the default section left out), Java properties and dotenv (flat maps of
//! strings), ignore files (`.gitignore`, `.dockerignore`: entries with their kind) and TOML
//! (tables, arrays of tables, strings, numbers, booleans, arrays, inline tables).

use serde_json::{Map, Value, json};

/// go-ini's typing: a number, else a boolean (`strconv.ParseBool`), else the string.
fn typed(v: &str) -> Value {
    if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
        && !v.is_empty()
    {
        return json!(f);
    }
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Value::Bool(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Value::Bool(false),
        _ => Value::String(v.to_string()),
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\'', '`'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

pub fn ini(text: &str) -> Result<Value, String> {
    let mut out = Map::new();
    let mut section: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) else {
                return Err(format!("line {}: unclosed section", n + 1));
            };
            let name = name.trim().to_string();
            section = (name != "DEFAULT").then_some(name.clone());
            if let Some(s) = &section {
                out.entry(s.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            continue;
        }
        let (key, value) = match line.find(['=', ':']) {
            Some(i) => (line[..i].trim(), line[i + 1..].trim()),
            None => (line, ""),
        };
        // An inline comment starts at ` #` or ` ;`, outside quotes.
        let value = if value.starts_with(['"', '\'', '`']) {
            unquote(value)
        } else {
            let cut = [" #", " ;", "\t#", "\t;"]
                .iter()
                .filter_map(|c| value.find(c))
                .min()
                .unwrap_or(value.len());
            value[..cut].trim().to_string()
        };
        if let Some(s) = &section
            && let Some(Value::Object(map)) = out.get_mut(s)
        {
            map.insert(key.to_string(), typed(&value));
        }
    }
    Ok(Value::Object(out))
}

/// Java properties: `key=value`, `key: value` or `key value`; `#`/`!` comments; `\` continues.
pub fn properties(text: &str) -> Result<Value, String> {
    let mut out = Map::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            logical.push_str(head);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let cut = entry.find(['=', ':', ' ', '\t']).unwrap_or(entry.len());
        let key = entry[..cut].trim().to_string();
        let rest = entry[cut..].trim_start();
        let value = rest
            .strip_prefix(['=', ':'])
            .unwrap_or(rest)
            .trim_start()
            .to_string();
        out.insert(key, Value::String(value));
    }
    Ok(Value::Object(out))
}

/// dotenv: `KEY=VALUE` (`export` allowed), quoted values, `#` comments.
pub fn dotenv(text: &str) -> Result<Value, String> {
    let mut out = Map::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE", n + 1));
        };
        let value = value.trim();
        let value = if value.starts_with(['"', '\'']) {
            unquote(value)
        } else {
            value.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.insert(key.trim().to_string(), Value::String(value));
    }
    Ok(Value::Object(out))
}

/// An ignore file: one entry per line, `{Kind, Value, Original}` with Kind `Path`,
/// `NegatedPath`, `Comment` or `Empty`.
pub fn ignore(text: &str) -> Value {
    let entries: Vec<Value> = text
        .lines()
        .map(|original| {
            let line = original.trim();
            let (kind, value) = if line.is_empty() {
                ("Empty", String::new())
            } else if let Some(c) = line.strip_prefix('#') {
                ("Comment", c.trim().to_string())
            } else if let Some(p) = line.strip_prefix('!') {
                ("NegatedPath", p.to_string())
            } else {
                ("Path", line.trim_end_matches('\\').trim_end().to_string())
            };
            json!({"Kind": kind, "Value": value, "Original": original})
        })
        .collect();
    Value::Array(entries)
}

/// TOML (the `toml` crate) as the JSON value conftest evaluates; a date-time is its text.
pub fn toml(text: &str) -> Result<Value, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    Ok(toml_to_json(toml::Value::Table(table)))
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// XML as goxml2json converts it (conftest's `xml` parser): the root element is the one key; an
/// element with neither attributes nor children is its text; otherwise an object of its
/// attributes (`-name`), its children by local name (a list when the name repeats) and its text
/// (`#content`). Every value is a string.
pub fn xml(text: &str) -> Result<Value, String> {
    use quick_xml::XmlVersion;
    use quick_xml::events::{BytesStart, Event};

    #[derive(Default)]
    struct Node {
        children: Vec<(String, Node)>,
        data: String,
    }
    impl Node {
        fn into_value(self) -> Value {
            if self.children.is_empty() {
                return Value::String(self.data);
            }
            let mut out = Map::new();
            if !self.data.is_empty() {
                out.insert("#content".to_string(), Value::String(self.data));
            }
            let mut grouped: Vec<(String, Vec<Value>)> = Vec::new();
            for (name, child) in self.children {
                let value = child.into_value();
                match grouped.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, list)) => list.push(value),
                    None => grouped.push((name, vec![value])),
                }
            }
            for (name, mut list) in grouped {
                let value = if list.len() == 1 {
                    list.remove(0)
                } else {
                    Value::Array(list)
                };
                out.insert(name, value);
            }
            Value::Object(out)
        }
    }
    fn open(e: &BytesStart) -> Result<(String, Node), String> {
        let name = e.local_name().as_ref().to_string();
        let mut node = Node::default();
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let key = a.key.local_name().as_ref().to_string();
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?;
            node.children.push((
                format!("-{key}"),
                Node {
                    children: vec![],
                    data: value.into_owned(),
                },
            ));
        }
        Ok((name, node))
    }

    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<(String, Node)> = vec![(String::new(), Node::default())];
    // goxml2json keeps the last run of text of an element (runs split by children), trimmed.
    let mut run = String::new();
    let mut in_run = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        let text_event = matches!(
            event,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_)
        );
        if !text_event && in_run {
            if let Some((_, node)) = stack.last_mut() {
                node.data = run.trim().to_string();
            }
            run.clear();
            in_run = false;
        }
        match event {
            Event::Start(e) => {
                // The tree is converted and dropped recursively: a deep one would overflow.
                if stack.len() > super::parse::MAX_NESTING {
                    return Err(format!(
                        "at byte {}: elements nested deeper than {} levels",
                        reader.buffer_position(),
                        super::parse::MAX_NESTING
                    ));
                }
                stack.push(open(&e)?)
            }
            Event::Empty(e) => {
                let (name, node) = open(&e)?;
                if let Some((_, parent)) = stack.last_mut() {
                    parent.children.push((name, node));
                }
            }
            Event::End(_) => {
                let Some((name, node)) = stack.pop() else {
                    return Err("unbalanced end tag".to_string());
                };
                match stack.last_mut() {
                    Some((_, parent)) => parent.children.push((name, node)),
                    None => return Err("unbalanced end tag".to_string()),
                }
            }
            Event::Text(t) => {
                run.push_str(&t.xml_content(XmlVersion::Implicit1_0));
                in_run = true;
            }
            Event::CData(t) => {
                run.push_str(&t);
                in_run = true;
            }
            Event::GeneralRef(r) => {
                let name = r.to_string();
                match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => run.push(c),
                    None => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => run.push_str(s),
                        None => return Err(format!("unknown entity &{name};")),
                    },
                }
                in_run = true;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("unclosed element".to_string());
    }
    let (_, root) = stack.remove(0);
    if root.children.is_empty() {
        return Err("no element".to_string());
    }
    Ok(root.into_value())
}

/// EDN, read by edn-format, as conftest's `edn` parser gives it: maps keyed by the key's text
/// (a keyword with its colon, `":env"`), strings as they are, every other scalar as its EDN
/// text (`:production`, `5432`, `true`), vectors, lists and sets as lists, a tagged value
/// (`#inst "..."`) as its value. `nil` is `null`.
pub fn edn(text: &str) -> Result<Value, String> {
    use edn_format::Value as Edn;
    fn key(k: &Edn) -> String {
        match k {
            Edn::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    fn convert(v: &Edn) -> Value {
        match v {
            Edn::Nil => Value::Null,
            Edn::String(s) => Value::String(s.clone()),
            Edn::Character(c) => Value::String(c.to_string()),
            Edn::List(items) | Edn::Vector(items) => {
                Value::Array(items.iter().map(convert).collect())
            }
            Edn::Set(items) => Value::Array(items.iter().map(convert).collect()),
            Edn::Map(map) => Value::Object(map.iter().map(|(k, v)| (key(k), convert(v))).collect()),
            Edn::TaggedElement(_, inner) => convert(inner),
            Edn::Inst(t) => Value::String(t.to_rfc3339()),
            other => Value::String(other.to_string()),
        }
    }
    let value = edn_format::parse_str(text).map_err(|e| e.to_string())?;
    Ok(convert(&value))
}

/// Jsonnet, evaluated by jrsonnet with its standard library and no imports (conftest's
/// `jsonnet` parser evaluates the file the same way): the JSON the program gives.
pub fn jsonnet(name: &str, text: &str) -> Result<Value, String> {
    use jrsonnet_evaluator::EvaluationState;
    let state = EvaluationState::default();
    state.with_stdlib();
    let path: std::rc::Rc<std::path::Path> = std::path::PathBuf::from(name).into();
    let value = state
        .evaluate_snippet_raw(path, text.into())
        .and_then(|v| state.manifest(v))
        .map_err(|e| {
            // The message and the first frames of its trace (a runaway recursion has many).
            let trace = state.stringify_err(&e);
            trace.trim().lines().take(4).collect::<Vec<_>>().join("\n")
        })?;
    serde_json::from_str(&value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_tables_and_arrays() {
        let v = toml("a = [\"x\",\n  \"y\", # c\n]\n[t.u]\n  b = true\n  n = 3\n[[t.list]]\n  k = 'v'\n[[t.list]]\n  k = \"w\"\ninline = {p = 1.5}\n").unwrap();
        assert_eq!(
            v,
            json!({"a": ["x", "y"], "t": {"u": {"b": true, "n": 3}, "list": [{"k": "v"}, {"k": "w", "inline": {"p": 1.5}}]}})
        );
    }

    #[test]
    fn ini_sections_are_typed() {
        let v =
            ini("top = 1\n[server]\nport = 3000\nprotocol = http ; web\n[users]\nallow = false\n")
                .unwrap();
        assert_eq!(
            v,
            json!({"server": {"port": 3000.0, "protocol": "http"}, "users": {"allow": false}})
        );
    }

    #[test]
    fn flat_formats_and_ignore_files() {
        assert_eq!(
            properties("a.b=c\n# x\nd: e\n").unwrap(),
            json!({"a.b": "c", "d": "e"})
        );
        assert_eq!(
            dotenv("export A=\"1\"\nB=2 # c\n").unwrap(),
            json!({"A": "1", "B": "2"})
        );
        let v = ignore("foo\n!bar\n# Baz\n");
        assert_eq!(v[1]["Kind"], "NegatedPath");
        assert_eq!(v[2]["Kind"], "Comment");
    }
}
