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

/// TOML, enough of it for configuration files.
pub fn toml(text: &str) -> Result<Value, String> {
    let mut root = Map::new();
    let mut path: Vec<String> = Vec::new();
    let mut chars = Toml {
        s: text.chars().collect(),
        i: 0,
        line: 1,
    };
    loop {
        chars.skip_ws_lines();
        let Some(c) = chars.peek() else { break };
        if c == '[' {
            let array = chars.peek_at(1) == Some('[');
            chars.i += if array { 2 } else { 1 };
            let key = chars.key_path()?;
            chars.expect(']')?;
            if array {
                chars.expect(']')?;
            }
            let table = table_at(&mut root, &key[..key.len() - 1])?;
            let last = key.last().cloned().unwrap_or_default();
            if array {
                let list = table
                    .entry(last)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = list else {
                    return Err(format!(
                        "line {}: {} is not an array of tables",
                        chars.line,
                        key.join(".")
                    ));
                };
                items.push(Value::Object(Map::new()));
            } else {
                table
                    .entry(last)
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            path = key;
            continue;
        }
        let key = chars.key_path()?;
        chars.skip_spaces();
        chars.expect('=')?;
        chars.skip_spaces();
        let value = chars.value()?;
        let table = table_at(&mut root, &path)?;
        let table = table_at(table, &key[..key.len() - 1])?;
        table.insert(key.last().cloned().unwrap_or_default(), value);
        chars.skip_spaces();
        chars.skip_comment();
        match chars.peek() {
            None | Some('\n') | Some('\r') => {}
            Some(c) => {
                return Err(format!(
                    "line {}: unexpected {c:?} after a value",
                    chars.line
                ));
            }
        }
    }
    Ok(Value::Object(root))
}

/// The table at `path` (the last element of an array of tables), made when missing.
fn table_at<'a>(
    root: &'a mut Map<String, Value>,
    path: &[String],
) -> Result<&'a mut Map<String, Value>, String> {
    let mut table = root;
    for key in path {
        let next = table
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        table = match next {
            Value::Object(map) => map,
            Value::Array(items) => match items.last_mut() {
                Some(Value::Object(map)) => map,
                _ => return Err(format!("{key} is not a table")),
            },
            _ => return Err(format!("{key} is not a table")),
        };
    }
    Ok(table)
}

struct Toml {
    s: Vec<char>,
    i: usize,
    line: usize,
}

impl Toml {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.i + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        self.skip_spaces();
        match self.bump() {
            Some(c) if c == want => Ok(()),
            other => Err(format!(
                "line {}: expected {want:?}, found {other:?}",
                self.line
            )),
        }
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.i += 1;
            }
        }
    }

    fn skip_ws_lines(&mut self) {
        loop {
            self.skip_spaces();
            self.skip_comment();
            match self.peek() {
                Some('\n' | '\r') => {
                    self.bump();
                }
                _ => return,
            }
        }
    }

    fn key_path(&mut self) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        loop {
            self.skip_spaces();
            let key = match self.peek() {
                Some('"' | '\'') => match self.value()? {
                    Value::String(s) => s,
                    _ => unreachable!("a quoted key is a string"),
                },
                _ => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
                    {
                        self.i += 1;
                    }
                    if start == self.i {
                        return Err(format!("line {}: expected a key", self.line));
                    }
                    self.s[start..self.i].iter().collect()
                }
            };
            keys.push(key);
            self.skip_spaces();
            if self.peek() == Some('.') {
                self.i += 1;
                continue;
            }
            return Ok(keys);
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('"') => {
                let multi = self.peek_at(1) == Some('"') && self.peek_at(2) == Some('"');
                self.i += if multi { 3 } else { 1 };
                if multi && self.peek() == Some('\n') {
                    self.bump();
                }
                let mut out = String::new();
                loop {
                    match self.bump() {
                        None => return Err(format!("line {}: unterminated string", self.line)),
                        Some('"') if !multi => return Ok(Value::String(out)),
                        Some('"') if self.peek() == Some('"') && self.peek_at(1) == Some('"') => {
                            self.i += 2;
                            return Ok(Value::String(out));
                        }
                        Some('\\') => match self.bump() {
                            Some('n') => out.push('\n'),
                            Some('t') => out.push('\t'),
                            Some('r') => out.push('\r'),
                            Some('"') => out.push('"'),
                            Some('\\') => out.push('\\'),
                            Some('u') => {
                                let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                                out.extend(
                                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32),
                                );
                            }
                            Some('\n') if multi => {
                                while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                                    self.bump();
                                }
                            }
                            other => {
                                return Err(format!("line {}: bad escape {other:?}", self.line));
                            }
                        },
                        Some(c) => out.push(c),
                    }
                }
            }
            Some('\'') => {
                let multi = self.peek_at(1) == Some('\'') && self.peek_at(2) == Some('\'');
                self.i += if multi { 3 } else { 1 };
                if multi && self.peek() == Some('\n') {
                    self.bump();
                }
                let mut out = String::new();
                loop {
                    match self.bump() {
                        None => return Err(format!("line {}: unterminated string", self.line)),
                        Some('\'') if !multi => return Ok(Value::String(out)),
                        Some('\'')
                            if self.peek() == Some('\'') && self.peek_at(1) == Some('\'') =>
                        {
                            self.i += 2;
                            return Ok(Value::String(out));
                        }
                        Some(c) => out.push(c),
                    }
                }
            }
            Some('[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws_lines();
                    if self.peek() == Some(']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value()?);
                    self.skip_ws_lines();
                    match self.bump() {
                        Some(',') => continue,
                        Some(']') => return Ok(Value::Array(items)),
                        other => {
                            return Err(format!(
                                "line {}: expected , or ] in an array, found {other:?}",
                                self.line
                            ));
                        }
                    }
                }
            }
            Some('{') => {
                self.i += 1;
                let mut map = Map::new();
                loop {
                    self.skip_spaces();
                    if self.peek() == Some('}') {
                        self.i += 1;
                        return Ok(Value::Object(map));
                    }
                    let key = self.key_path()?;
                    self.expect('=')?;
                    self.skip_spaces();
                    let v = self.value()?;
                    table_at(&mut map, &key[..key.len() - 1])?
                        .insert(key.last().cloned().unwrap_or_default(), v);
                    self.skip_spaces();
                    match self.bump() {
                        Some(',') => continue,
                        Some('}') => return Ok(Value::Object(map)),
                        other => {
                            return Err(format!(
                                "line {}: expected , or }} in a table, found {other:?}",
                                self.line
                            ));
                        }
                    }
                }
            }
            _ => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | ']' | '}' | '\n' | '\r' | '#'))
                {
                    self.i += 1;
                }
                let word: String = self.s[start..self.i]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string();
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    w => {
                        let plain = w.replace('_', "");
                        if let Ok(n) = plain.parse::<i64>() {
                            Ok(json!(n))
                        } else if let Ok(f) = plain.parse::<f64>() {
                            Ok(json!(f))
                        } else if !w.is_empty() {
                            // Dates and times stay strings.
                            Ok(Value::String(w.to_string()))
                        } else {
                            Err(format!("line {}: expected a value", self.line))
                        }
                    }
                }
            }
        }
    }
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
