//! The documents conftest evaluates: a file (or stdin, `-`) read by its parser, chosen by
//! `--parser` or by the file's name. YAML (documents split on `---` lines as conftest splits
//! them, an empty one being `null`), JSON, Dockerfiles, HCL (`hcl`) and the formats of `formats`
//! are read; another of conftest's parsers (CUE, Jsonnet, ...) is an error that names it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{ConftestError, formats};

/// The parsers gitgate reads, by conftest's names.
pub const PARSERS: &[&str] = &[
    "yaml",
    "json",
    "dockerfile",
    "toml",
    "ini",
    "properties",
    "dotenv",
    "ignore",
    "hcl1",
    "hcl2",
    "xml",
    "spdx",
    "cyclonedx",
    "vcl",
    "edn",
    "textproto",
    "jsonnet",
];

/// conftest's parsers gitgate does not have: a file they would read is an error naming the
/// parser, never skipped.
const UNSUPPORTED: &[&str] = &[
    "cue",
    "edn",
    "groovy",
    "hocon",
    "jsonc",
    "jsonnet",
    "nginx",
    "textproto",
    "vcl",
];

/// One input: its name as conftest prints it and its documents.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub documents: Vec<Value>,
}

/// `[a]` → `a`; several documents → the array of them (conftest's configuration of a file).
pub fn single(mut docs: Vec<Value>) -> Value {
    if docs.len() == 1 {
        docs.remove(0)
    } else {
        Value::Array(docs)
    }
}

/// The parser conftest chooses by a file's name (`parser.NewFromPath`): Dockerfiles, YAML,
/// `.tf`/`.tfvars`/`.hcl` as HCL 2, ignore files, dotenv, `nginx.conf`, Jenkinsfiles,
/// text protos, else the parser named by the extension.
fn parser_for(name: &str) -> Option<&'static str> {
    let base = Path::new(name)
        .file_name()
        .map(|f| f.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    // Go's `filepath.Ext`: a dot file's extension is its name (`.gitignore` → `gitignore`).
    let ext = base
        .rsplit_once('.')
        .map(|(_, e)| e.to_string())
        .unwrap_or_default();
    if base == "dockerfile" || base.starts_with("dockerfile.") || ext == "dockerfile" {
        return Some("dockerfile");
    }
    Some(match ext.as_str() {
        "yaml" | "yml" => "yaml",
        "hcl" | "tf" | "tfvars" => "hcl2",
        "gitignore" | "dockerignore" => "ignore",
        "env" => "dotenv",
        _ if base == ".env" || base.starts_with(".env.") => "dotenv",
        _ if base == "nginx.conf" => "nginx",
        _ if base == "jenkinsfile" || base.starts_with("jenkinsfile.") => "groovy",
        "textproto" | "textpb" => "textproto",
        other => return canonical(other),
    })
}

/// A parser's name as conftest spells it (`--parser`), or `None` when conftest has none.
fn canonical(name: &str) -> Option<&'static str> {
    PARSERS
        .iter()
        .chain(UNSUPPORTED)
        .find(|p| **p == name)
        .copied()
}

/// How deep the documents of readers without a limit of their own may nest: serde_json's
/// limit, where a JSON document stops.
pub const MAX_NESTING: usize = 128;

/// Where `text`'s brackets (`{`, `[`, `(`, a text proto's `<`) first nest deeper than
/// [`MAX_NESTING`], as
/// `parser` (`edn`, `jsonnet`, `textproto`, `vcl`) reads strings and comments: an opening
/// bracket counts everywhere, a closing one only in code (one in a string or a comment does
/// not close anything). The count can only be too high, never too low: a document may be
/// refused that the reader would have read within the limit, never the other way.
fn too_deep(parser: &str, text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (hash_comments, slash_comments, single_quotes, escapes) = match parser {
        "edn" => (false, false, false, true),
        "jsonnet" => (true, true, true, true),
        "textproto" => (true, false, true, true),
        // VCL strings have no escapes (`%22` is a quote).
        _ => (true, true, false, false),
    };
    // The end of the string, comment or block starting at `i`, if one does.
    let skipped = |i: usize| -> Option<usize> {
        let rest = &bytes[i..];
        let to = |pat: &[u8], from: usize| {
            rest[from..]
                .windows(pat.len())
                .position(|w| w == pat)
                .map_or(bytes.len(), |p| i + from + p + pat.len())
        };
        match rest[0] {
            quote @ (b'"' | b'\'') if quote == b'"' || single_quotes => {
                let mut j = 1;
                while j < rest.len() && rest[j] != quote {
                    j += if escapes && rest[j] == b'\\' { 2 } else { 1 };
                }
                Some((i + j + 1).min(bytes.len()))
            }
            b';' if parser == "edn" => Some(to(b"\n", 0)),
            // A character literal (`\]`).
            b'\\' if parser == "edn" => Some((i + 2).min(bytes.len())),
            b'#' if hash_comments => Some(to(b"\n", 0)),
            b'/' if slash_comments && rest.get(1) == Some(&b'/') => Some(to(b"\n", 0)),
            b'/' if slash_comments && rest.get(1) == Some(&b'*') => Some(to(b"*/", 2)),
            b'|' if parser == "jsonnet" && rest.starts_with(b"|||") => Some(to(b"|||", 3)),
            _ => None,
        }
    };
    // A text proto's message may be written `field < ... >` too.
    let angles = parser == "textproto";
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        // Inside a string or a comment only the opening brackets count.
        let end = skipped(i).unwrap_or(i + 1);
        for (at, b) in bytes[i..end].iter().enumerate() {
            if matches!(b, b'{' | b'[' | b'(') || (angles && *b == b'<') {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i + at);
                }
            }
        }
        if end == i + 1 && (matches!(bytes[i], b'}' | b']' | b')') || (angles && bytes[i] == b'>'))
        {
            depth = depth.saturating_sub(1);
        }
        i = end;
    }
    None
}

/// Parses `text` (named `name` in errors) with `parser`, or the one its name implies.
pub fn parse_text(
    name: &str,
    text: &str,
    parser: Option<&str>,
) -> Result<Vec<Value>, ConftestError> {
    let parser = match parser {
        Some(p) => {
            let p = p.to_ascii_lowercase();
            match canonical(&p) {
                Some(p) => p,
                None => {
                    return Err(ConftestError::new(format!(
                        "{name}: unknown parser {p:?}: gitgate reads {} documents",
                        PARSERS.join(", ")
                    )));
                }
            }
        }
        None => match parser_for(name) {
            Some(p) => p,
            None => {
                return Err(ConftestError::new(format!(
                    "{name}: unknown file type: gitgate reads {} documents (choose one with --parser)",
                    PARSERS.join(", ")
                )));
            }
        },
    };
    // A CycloneDX or SPDX JSON document is read as the JSON it is.
    let parser = match parser {
        "cyclonedx" | "spdx" if text.trim_start().starts_with('{') => "json",
        p => p,
    };
    let invalid = |e: String| ConftestError::new(format!("{name}: invalid {parser}: {e}"));
    // Readers that recurse once per level and set no limit of their own: a hostile file
    // nested deep enough would overflow the stack (the process aborts); refused at the depth
    // serde_json stops at.
    if matches!(parser, "edn" | "jsonnet" | "textproto" | "vcl")
        && let Some(at) = too_deep(parser, text)
    {
        return Err(invalid(format!(
            "nested deeper than {MAX_NESTING} levels (brackets) at byte {at}"
        )));
    }
    match parser {
        "yaml" => yaml(name, text),
        "json" => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| ConftestError::new(format!("{name}: invalid JSON: {e}")))?;
            Ok(vec![value])
        }
        "dockerfile" => Ok(vec![dockerfile(text)]),
        "ignore" => Ok(vec![formats::ignore(text)]),
        "toml" => Ok(vec![formats::toml(text).map_err(invalid)?]),
        "ini" => Ok(vec![formats::ini(text).map_err(invalid)?]),
        "properties" => Ok(vec![formats::properties(text).map_err(invalid)?]),
        "dotenv" => Ok(vec![formats::dotenv(text).map_err(invalid)?]),
        "xml" => Ok(vec![formats::xml(text).map_err(invalid)?]),
        "vcl" => Ok(vec![super::vcl::vcl(text).map_err(invalid)?]),
        "edn" => Ok(vec![formats::edn(text).map_err(invalid)?]),
        "jsonnet" => Ok(vec![formats::jsonnet(name, text).map_err(invalid)?]),
        "textproto" => Ok(vec![super::textproto::textproto(text).map_err(invalid)?]),
        "hcl2" => Ok(vec![super::hcl::hcl2(text).map_err(invalid)?]),
        "hcl1" => Ok(vec![super::hcl::hcl1(text).map_err(invalid)?]),
        // SPDX's tag-value form, read by spdx-rs into the document's JSON form.
        "spdx" => {
            let doc =
                spdx_rs::parsers::spdx_from_tag_value(text).map_err(|e| invalid(e.to_string()))?;
            Ok(vec![
                serde_json::to_value(&doc).map_err(|e| invalid(e.to_string()))?,
            ])
        }
        // CycloneDX's XML form, read by cyclonedx-bom into the JSON form of its version.
        "cyclonedx" => Ok(vec![cyclonedx_xml(text).map_err(invalid)?]),
        other => Err(ConftestError::new(format!(
            "{name}: conftest's {other:?} parser is not supported by gitgate (it reads {} documents)",
            PARSERS.join(", ")
        ))),
    }
}

/// A CycloneDX XML document as the JSON document of its specification version (1.3 to 1.5,
/// by its namespace).
fn cyclonedx_xml(text: &str) -> Result<Value, String> {
    use cyclonedx_bom::models::bom::{Bom, SpecVersion};
    let text = text.trim_start_matches('\u{feff}');
    let version = match text.find("http://cyclonedx.org/schema/bom/") {
        // (Three bytes may end inside a character: `get` is then no version.)
        Some(at) => match text.get(at + 32..(at + 35).min(text.len())).unwrap_or("") {
            "1.3" => SpecVersion::V1_3,
            "1.4" => SpecVersion::V1_4,
            "1.5" => SpecVersion::V1_5,
            other => return Err(format!("CycloneDX {other} is not read (1.3 to 1.5 are)")),
        },
        None => return Err("not a CycloneDX document (no bom namespace)".to_string()),
    };
    let bom =
        Bom::parse_from_xml_with_version(text.as_bytes(), version).map_err(|e| e.to_string())?;
    let mut json = Vec::new();
    bom.output_as_json(&mut json, version)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

/// conftest's YAML reading: a `---` line separates documents; each part is one document, an
/// empty one `null`.
fn yaml(name: &str, text: &str) -> Result<Vec<Value>, ConftestError> {
    let break_ = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let separator = format!("{break_}---{break_}");
    let parts: Vec<&str> = text.split(separator.as_str()).collect();
    let mut out = Vec::new();
    for part in &parts {
        let docs = crate::manifest::parse_str(name, part)
            .map_err(|e| ConftestError::new(e.to_string()))?;
        match docs.len() {
            0 => out.push(Value::Null),
            _ => out.extend(docs.into_iter().map(|d| d.value)),
        }
    }
    Ok(out)
}

/// A Dockerfile as conftest's parser gives it: a list of `{Cmd, Flags, Value, ...}`, one per
/// instruction, comments as `comment` commands.
fn dockerfile(text: &str) -> Value {
    let mut commands = Vec::new();
    let mut stage: i64 = -1;
    let mut logical = String::new();
    let mut comments: Vec<String> = Vec::new();
    let flush = |line: &str,
                 comments: &mut Vec<String>,
                 commands: &mut Vec<Value>,
                 stage: &mut i64| {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let cmd = cmd.to_ascii_lowercase();
        if cmd == "from" {
            *stage += 1;
        }
        let current = (*stage).max(0);
        for c in comments.drain(..) {
            commands.push(json!({"Cmd": "comment", "SubCmd": "", "JSON": false, "Flags": [], "Value": [c], "Stage": current}));
        }
        let mut rest = rest.trim_start();
        let mut flags = Vec::new();
        while rest.starts_with("--") {
            let (flag, more) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            flags.push(flag.to_string());
            rest = more.trim_start();
        }
        let (is_json, values): (bool, Vec<String>) = match serde_json::from_str::<Vec<String>>(rest)
        {
            Ok(v) if rest.starts_with('[') => (true, v),
            _ => match cmd.as_str() {
                "run" | "cmd" | "entrypoint" | "shell" | "healthcheck" | "onbuild" => {
                    (false, vec![rest.to_string()])
                }
                _ => (false, rest.split_whitespace().map(str::to_string).collect()),
            },
        };
        commands.push(json!({"Cmd": cmd, "SubCmd": "", "JSON": is_json, "Flags": flags, "Value": values, "Stage": current}));
    };
    for raw in text.lines() {
        let trimmed = raw.trim();
        if logical.is_empty() && trimmed.starts_with('#') {
            let c = trimmed.trim_start_matches('#').trim();
            // Parser directives (`# syntax=...`) are not comments.
            if !(commands.is_empty() && c.contains('=') && !c.contains(' ')) {
                comments.push(c.to_string());
            }
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        if !logical.is_empty() && trimmed.starts_with('#') {
            continue;
        }
        logical.push_str(trimmed);
        let line = std::mem::take(&mut logical);
        flush(&line, &mut comments, &mut commands, &mut stage);
    }
    let line = std::mem::take(&mut logical);
    flush(&line, &mut comments, &mut commands, &mut stage);
    Value::Array(commands)
}

/// Reads a file with `parser` (or by its name).
pub fn read(path: &Path, parser: Option<&str>) -> Result<Vec<Value>, ConftestError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| ConftestError::new(format!("{name}: cannot read: {e}")))?;
    if meta.len() as usize > crate::manifest::MAX_FILE_BYTES {
        return Err(ConftestError::new(format!("{name}: over 16 MiB, not read")));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConftestError::new(format!("{name}: cannot read: {e}")))?;
    parse_text(&name, &text, parser)
}

/// One file's configuration (what `parse_config_file` returns).
pub fn config_value(path: &Path, parser: Option<&str>) -> Result<Value, ConftestError> {
    Ok(single(read(path, parser)?))
}

/// The documents of a data file.
pub fn data_file(path: &Path) -> Result<Vec<Value>, ConftestError> {
    Ok(read(path, None)?
        .into_iter()
        .filter(|v| !v.is_null())
        .collect())
}

/// conftest's `--combine`: one array of `{path, contents}`, each document of each file, by path.
pub fn combine(files: Vec<(String, Value)>) -> Value {
    let mut all: Vec<(String, Value)> = Vec::new();
    for (path, value) in files {
        match value {
            Value::Array(docs) if !path.is_empty() && is_multi(&docs) => {
                all.extend(docs.into_iter().map(|d| (path.clone(), d)))
            }
            other => all.push((path, other)),
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Array(
        all.into_iter()
            .map(|(path, contents)| json!({"path": path, "contents": contents}))
            .collect(),
    )
}

/// An array read from a YAML stream of several documents (not a JSON array document).
fn is_multi(docs: &[Value]) -> bool {
    docs.iter().all(|d| d.is_object() || d.is_null())
}

/// The inputs named on the command line: files, directories (every file a parser reads,
/// recursively), `-` for stdin; an empty name is ignored, as conftest ignores it.
pub fn inputs(
    paths: &[PathBuf],
    parser: Option<&str>,
    stdin_name: Option<&str>,
) -> Result<Vec<Input>, ConftestError> {
    let mut out = Vec::new();
    for p in paths {
        let name = p.display().to_string();
        if name.is_empty() {
            continue;
        }
        if name == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ConftestError::new(format!("stdin: cannot read: {e}")))?;
            // stdin has no name: YAML unless --parser (or --stdin-filename) says otherwise.
            let name = stdin_name.unwrap_or("-");
            let parser = parser.or_else(|| parser_for(name)).unwrap_or("yaml");
            let documents = parse_text(name, &text, Some(parser))?;
            out.push(Input {
                name: name.to_string(),
                documents,
            });
            continue;
        }
        if !p.exists() {
            return Err(ConftestError::new(format!(
                "{name}: no such file or directory"
            )));
        }
        if p.is_dir() {
            for entry in walkdir::WalkDir::new(p)
                .sort_by_file_name()
                .follow_links(true)
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
                })
            {
                let entry = entry.map_err(|e| ConftestError::new(e.to_string()))?;
                let file = entry.path().display().to_string();
                if entry.file_type().is_file() && (parser.is_some() || parser_for(&file).is_some())
                {
                    out.push(Input {
                        documents: read(entry.path(), parser)?,
                        name: file,
                    });
                }
            }
            continue;
        }
        out.push(Input {
            documents: read(p, parser)?,
            name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_nested_too_deep_is_an_error_not_an_abort() {
        let deep = 100_000;
        for (parser, text) in [
            ("edn", format!("{}{}", "[".repeat(deep), "]".repeat(deep))),
            (
                "jsonnet",
                format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
            ),
            (
                "vcl",
                format!("sub x {}{}", "{".repeat(deep), "}".repeat(deep)),
            ),
            (
                "xml",
                format!("{}{}", "<a>".repeat(deep), "</a>".repeat(deep)),
            ),
            // Closing brackets in strings, comments and character literals close nothing.
            (
                "edn",
                format!("{}{}", "[\"]\" ".repeat(deep), "]".repeat(deep)),
            ),
            (
                "edn",
                format!("{}{}", "[\\] ".repeat(deep), "]".repeat(deep)),
            ),
            (
                "edn",
                format!("{}{}", "[;]\n".repeat(deep), "]".repeat(deep)),
            ),
            (
                "jsonnet",
                format!("{}0{}", "['}', ".repeat(deep), "]".repeat(deep)),
            ),
            (
                "jsonnet",
                format!("{}0{}", "[/* ] */ ".repeat(deep), "]".repeat(deep)),
            ),
            (
                "vcl",
                format!("sub x {}{}", "{ # }\n".repeat(deep), "}".repeat(deep)),
            ),
            (
                "textproto",
                format!("{}{}", "a < ".repeat(deep), ">".repeat(deep)),
            ),
        ] {
            let e = super::parse_text("deep", &text, Some(parser)).unwrap_err();
            assert!(
                e.to_string().contains("nested deeper than 128"),
                "{parser}: {e}"
            );
        }
        // Within the limit, read as before.
        let v = super::parse_text(
            "ok.edn",
            &format!("{}1{}", "[".repeat(100), "]".repeat(100)),
            None,
        )
        .unwrap();
        let mut at = &v[0];
        for _ in 0..100 {
            at = &at[0];
        }
        assert_eq!(at, &serde_json::json!("1"));
        let xml = format!("{}x{}", "<a>".repeat(100), "</a>".repeat(100));
        assert!(super::parse_text("ok.xml", &xml, None).is_ok());
    }

    #[test]
    fn yaml_documents_split_as_conftest_splits_them() {
        let docs = parse_text("a.yaml", "a: 1\n---\n\n---\nb: 2\n", None).unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), Value::Null, json!({"b": 2})]);
        assert_eq!(parse_text("e.yaml", "", None).unwrap(), vec![Value::Null]);
    }

    #[test]
    fn dockerfile_instructions() {
        let v = dockerfile(
            "# syntax=docker/dockerfile:1\nFROM alpine AS base\n# hi\nRUN apk add \\\n  curl\nCOPY --link a b\nCMD [\"x\", \"y\"]\n",
        );
        let cmds: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Cmd"].as_str().unwrap())
            .collect();
        assert_eq!(cmds, vec!["from", "comment", "run", "copy", "cmd"]);
        assert!(
            v[2]["Value"][0].as_str().unwrap().ends_with("add  curl"),
            "{v}"
        );
        assert_eq!(v[3]["Flags"], json!(["--link"]));
        assert_eq!(v[4]["JSON"], json!(true));
    }

    #[test]
    fn unknown_parsers_are_named() {
        let e = parse_text("x", "a: 1", Some("cue"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"cue\""), "{e}");
        let e = parse_text("app.cue", "a: 1", None).unwrap_err().to_string();
        assert!(e.contains("app.cue") && e.contains("\"cue\""), "{e}");
        let e = parse_text("x", "a: 1", Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown parser \"nope\""), "{e}");
    }
}
