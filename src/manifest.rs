//! Reading Kubernetes manifests: YAML or JSON, one or many documents per file, each with the
//! line it starts on, under limits that make hostile input (alias bombs, huge files) fail fast
//! with an error that names the file.
//!
//! **Deep YAML does not overflow the caller's stack.** The parser recurses once per level,
//! and in a debug build a level costs tens of KiB: the 64 levels the limits allow would
//! overflow a 2 MiB thread (tokio's and std's default). So a document is read on the caller's
//! thread only while it stays shallow (most manifests are under a dozen levels); when it
//! nests deeper than [`INLINE_DEPTH`], the file is read again on a thread of its own with
//! [`PARSE_STACK`] bytes of stack. A large file goes to that thread at once (most are deep
//! CustomResourceDefinitions), and a thread made for reading many files ([`deep_reader`])
//! reads at any depth itself.

use std::cell::Cell;
use std::path::Path;

use serde_json::Value;
use serde_saphyr::{Options, Spanned};

/// The largest manifest file gitgate reads (bytes). Larger files are refused, not truncated.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// The line of every field of a document, by JSON pointer (`/spec/containers/0/image`), so
/// that a finding can point at the line to fix rather than at the document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lines(std::collections::BTreeMap<String, usize>);

impl Lines {
    /// The line of `pointer`, or of its nearest ancestor that has one.
    pub fn find(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(line) = self.0.get(p) {
                return Some(*line);
            }
            p = &p[..p.rfind('/')?];
        }
    }

    /// The line of a dotted path as policies write it (`spec.template.spec.containers[0]`).
    pub fn find_path(&self, path: &str) -> Option<usize> {
        self.find(&pointer_of(path))
    }

    /// Whether no line is known (a JSON file, a rendered object).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The line of exactly `pointer`, not of an ancestor.
    pub fn exact(&self, pointer: &str) -> Option<usize> {
        self.0.get(pointer).copied()
    }

    /// Keeps the lines of the pointers `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|pointer, _| keep(pointer));
    }
}

/// The JSON pointer of a dotted path as policies write it
/// (`spec.containers[0].image` → `/spec/containers/0/image`).
pub fn pointer_of(path: &str) -> String {
    let mut pointer = String::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        for index in indices.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                pointer.push('/');
                pointer.push_str(index);
            }
        }
    }
    pointer
}

/// The nesting up to which YAML is read on the caller's thread (see the module doc).
pub const INLINE_DEPTH: usize = 20;

/// The stack of the thread that reads deeper YAML: room for the parser's 64 levels in a
/// debug build, several times over.
pub const PARSE_STACK: usize = 16 << 20;

thread_local! {
    /// The nesting of the YAML node being read on this thread, and the most it may reach
    /// here (`usize::MAX` on a thread with [`PARSE_STACK`]).
    static NESTING: Cell<(usize, usize)> = const { Cell::new((0, usize::MAX)) };
    /// Set when a read stopped at the inline limit.
    static STOPPED: Cell<bool> = const { Cell::new(false) };
}

/// One level of nesting entered; left when dropped.
struct Level;

impl Level {
    /// Enters a level, or `None` past this thread's limit (and notes it).
    fn enter() -> Option<Level> {
        NESTING.with(|n| {
            let (depth, limit) = n.get();
            if depth >= limit {
                STOPPED.with(|s| s.set(true));
                return None;
            }
            n.set((depth + 1, limit));
            Some(Level)
        })
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        NESTING.with(|n| {
            let (depth, limit) = n.get();
            n.set((depth.saturating_sub(1), limit));
        });
    }
}

/// A YAML node with its position, read through serde-saphyr's spans.
enum Tree {
    Leaf(Value),
    Seq(Vec<Spanned<Tree>>),
    Map(Vec<(String, Spanned<Tree>)>),
}

impl<'de> serde::Deserialize<'de> for Tree {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        read_node(d)
    }
}

impl Build for Tree {
    type Child = Spanned<Tree>;
    fn leaf(value: Value) -> Tree {
        Tree::Leaf(value)
    }
    fn seq(items: Vec<Spanned<Tree>>) -> Tree {
        Tree::Seq(items)
    }
    fn map(entries: Vec<(String, Spanned<Tree>)>) -> Tree {
        Tree::Map(entries)
    }
}

/// A YAML node read straight into JSON, without the position of each field: what
/// [`parse_bytes_with`] reads when no line per field is wanted (the provenance index, which
/// reads every version of every file of its window). It reads as [`Tree`] does.
struct Plain(Value);

impl<'de> serde::Deserialize<'de> for Plain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Plain, D::Error> {
        read_node(d)
    }
}

impl Build for Plain {
    type Child = Plain;
    fn leaf(value: Value) -> Plain {
        Plain(value)
    }
    fn seq(items: Vec<Plain>) -> Plain {
        Plain(Value::Array(items.into_iter().map(|p| p.0).collect()))
    }
    fn map(entries: Vec<(String, Plain)>) -> Plain {
        let mut map = serde_json::Map::with_capacity(entries.len());
        for (key, item) in entries {
            // As `flatten`: a merge key (`<<`) may repeat a key, the last one wins.
            map.insert(key, item.0);
        }
        Plain(Value::Object(map))
    }
}

/// What a YAML node is read into ([`Tree`], with the position of each node, or [`Plain`]
/// JSON): both read scalars, keys and nesting the same way, through [`read_node`].
trait Build: Sized {
    /// A child node as it is read (a spanned tree, or plain JSON).
    type Child: for<'de> serde::Deserialize<'de>;
    fn leaf(value: Value) -> Self;
    fn seq(items: Vec<Self::Child>) -> Self;
    /// The entries in order (a merge key may repeat one: the last wins).
    fn map(entries: Vec<(String, Self::Child)>) -> Self;
}

/// Reads one node one level deeper, or refuses it past this thread's limit ([`Level`]).
fn read_node<'de, N, D>(d: D) -> Result<N, D::Error>
where
    N: Build + serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    let Some(_level) = Level::enter() else {
        return Err(serde::de::Error::custom(
            "nested too deep to read on this thread",
        ));
    };
    d.deserialize_any(Visit(std::marker::PhantomData))
}

/// The visitor of [`read_node`]: YAML's scalars as JSON, keys as text.
struct Visit<N>(std::marker::PhantomData<N>);

impl<'de, N: Build + serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<N> {
    type Value = N;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<N, E> {
        Ok(N::leaf(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<N, E> {
        Ok(N::leaf(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<N, E> {
        Ok(N::leaf(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<N, E> {
        Ok(N::leaf(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<N, E> {
        Ok(N::leaf(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<N, E> {
        Ok(N::leaf(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<N, E> {
        Ok(N::leaf(Value::Null))
    }
    fn visit_none<E>(self) -> Result<N, E> {
        Ok(N::leaf(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<N, D::Error> {
        N::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<N, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<N::Child>()? {
            items.push(item);
        }
        Ok(N::seq(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<N, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Value>()? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            entries.push((key, map.next_value::<N::Child>()?));
        }
        Ok(N::map(entries))
    }
}

/// Turns a tree into JSON, recording the line of every field under `pointer`.
fn flatten(tree: Spanned<Tree>, pointer: &mut String, lines: &mut Lines) -> Value {
    lines
        .0
        .insert(pointer.clone(), (tree.referenced.line() as usize).max(1));
    match tree.value {
        Tree::Leaf(v) => v,
        Tree::Seq(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    let v = flatten(item, pointer, lines);
                    pointer.truncate(len);
                    v
                })
                .collect(),
        ),
        Tree::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (key, item) in entries {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                let v = flatten(item, pointer, lines);
                pointer.truncate(len);
                // Duplicate keys are refused by the parser; a merge key (`<<`) may repeat one.
                map.insert(key, v);
            }
            Value::Object(map)
        }
    }
}

/// One YAML or JSON document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The parsed document as JSON; YAML scalars are typed as kubectl types them (YAML 1.1
    /// booleans such as `yes`/`on` included), so CI sees what the API server will.
    pub value: Value,
    /// 1-based line of the document's first node in its file.
    pub line: usize,
    /// 0-based position of the document among the file's non-empty documents.
    pub index: usize,
    /// The line of each field (YAML only; empty for JSON, whose findings use `line`).
    pub lines: Lines,
}

/// Why a manifest could not be read. Every variant names the input.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        file: String,
        size: usize,
        limit: usize,
    },
    #[error("{file}:{line}: invalid YAML: {message}")]
    Yaml {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: invalid JSON: {message}")]
    Json {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: not UTF-8 text (binary file?)")]
    NotText { file: String },
    #[error("{file}:{line}: expected a mapping (an object), found {found}")]
    NotAnObject {
        file: String,
        line: usize,
        found: &'static str,
    },
}

impl ManifestError {
    /// The 1-based line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ManifestError::Yaml { line, .. }
            | ManifestError::Json { line, .. }
            | ManifestError::NotAnObject { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// Parser options: the library's default budget already stops alias bombs and deep nesting;
/// duplicate keys are an error, as the API server's strict decoding makes them.
fn options() -> Options {
    let mut options = Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // As kubectl (YAML 1.1): `mode: 0644` is octal, 420.
    options.legacy_octal_numbers = true;
    options.with_snippet = false;
    options
}

/// Reads every document of a file.
pub fn read_file(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| ManifestError::Io {
        file: file.clone(),
        source,
    })?;
    if meta.len() as usize > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            file,
            size: meta.len() as usize,
            limit: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
        file: file.clone(),
        source,
    })?;
    parse_bytes(&file, &bytes)
}

/// Parses bytes (from a file or a Git blob) named `file` in errors.
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Vec<Document>, ManifestError> {
    parse_bytes_with(file, bytes, true)
}

/// [`parse_bytes`], with [`Document::lines`] left empty when `lines` is false (what keeps
/// only a document's line: the provenance index, which reads every version of every file
/// of its window, and whose largest files have a line for each of 100,000 fields).
pub fn parse_bytes_with(
    file: &str,
    bytes: &[u8],
    lines: bool,
) -> Result<Vec<Document>, ManifestError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ManifestError::TooLarge {
            file: file.to_string(),
            size: bytes.len(),
            limit: MAX_FILE_BYTES,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ManifestError::NotText {
        file: file.to_string(),
    })?;
    parse_str_with(file, text, lines)
}

/// Parses text: JSON when the file name ends in `.json`, YAML (which includes JSON) otherwise.
pub fn parse_str(file: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    parse_str_with(file, text, true)
}

/// [`parse_str`], with the line of each field only when `lines` is true.
fn parse_str_with(
    file: &str,
    text: &str,
    with_lines: bool,
) -> Result<Vec<Document>, ManifestError> {
    if file.ends_with(".json") {
        return parse_json(file, text);
    }
    let error = |e| match e {
        Read::Yaml(e) => ManifestError::Yaml {
            file: file.to_string(),
            line: e.location().map(|l| l.line() as usize).unwrap_or(0),
            message: yaml_error(&e),
        },
        Read::NoThread(e) => ManifestError::Yaml {
            file: file.to_string(),
            line: 0,
            message: format!("nested deeply, and no thread to read it on: {e}"),
        },
    };
    let document = |index, line: usize, value, lines| Document {
        line: line.max(1),
        value,
        index,
        lines,
    };
    if !with_lines {
        let docs = read_yaml::<Spanned<Plain>>(text).map_err(error)?;
        return Ok(docs
            .into_iter()
            .enumerate()
            .map(|(index, d)| {
                let line = d.referenced.line() as usize;
                document(index, line, d.value.0, Lines::default())
            })
            .collect());
    }
    let docs = read_yaml::<Spanned<Tree>>(text).map_err(error)?;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(index, d)| {
            let line = d.referenced.line() as usize;
            let mut lines = Lines::default();
            let value = flatten(d, &mut String::new(), &mut lines);
            document(index, line, value, lines)
        })
        .collect())
}

/// Why YAML could not be read.
enum Read {
    Yaml(serde_saphyr::Error),
    NoThread(std::io::Error),
}

/// The size from which a YAML text is read on a thread with [`PARSE_STACK`] at once rather
/// than first on the caller's: large files are mostly CustomResourceDefinitions, which nest
/// deeper than [`INLINE_DEPTH`], and the thread costs nothing beside their parse.
const THREAD_FROM_BYTES: usize = 64 * 1024;

thread_local! {
    /// Set on a thread started with [`PARSE_STACK`] bytes of stack ([`deep_reader`]): YAML is
    /// read on it at any depth.
    static DEEP: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` on a new scoped thread with [`PARSE_STACK`] bytes of stack, on which YAML of
/// any depth is read without another thread (what reads many files at once: the provenance
/// index's parse-ahead).
pub fn deep_reader<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    read: impl FnOnce() -> T + Send + 'scope,
) -> std::io::Result<std::thread::ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new()
        .name("gitgate-yaml".into())
        .stack_size(PARSE_STACK)
        .spawn_scoped(scope, move || {
            DEEP.with(|d| d.set(true));
            read()
        })
}

/// Reads YAML documents on this thread while they stay within [`INLINE_DEPTH`], and on a
/// thread with [`PARSE_STACK`] when one nests deeper (or the text is large, or at any depth
/// where this thread is a [`deep_reader`]).
fn read_yaml<T: serde::de::DeserializeOwned + Send>(text: &str) -> Result<Vec<T>, Read> {
    if DEEP.with(Cell::get) {
        let outer = NESTING.with(|n| n.replace((0, usize::MAX)));
        let read = serde_saphyr::from_multiple_with_options(text, options());
        NESTING.with(|n| n.set(outer));
        return read.map_err(Read::Yaml);
    }
    if text.len() < THREAD_FROM_BYTES {
        let outer = NESTING.with(|n| n.replace((0, INLINE_DEPTH)));
        STOPPED.with(|s| s.set(false));
        let inline = serde_saphyr::from_multiple_with_options(text, options());
        NESTING.with(|n| n.set(outer));
        let stopped = STOPPED.with(|s| s.replace(false));
        match inline {
            Err(_) if stopped => {}
            other => return other.map_err(Read::Yaml),
        }
    }
    std::thread::scope(|scope| {
        let reader = deep_reader(scope, || {
            serde_saphyr::from_multiple_with_options(text, options()).map_err(Read::Yaml)
        })
        .map_err(Read::NoThread)?;
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn parse_json(file: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let skipped = text[start..]
                    .find(|c: char| !c.is_whitespace())
                    .unwrap_or(0);
                let line = text[..start + skipped].matches('\n').count() + 1;
                let index = out.len();
                out.push(Document {
                    value,
                    line,
                    index,
                    lines: Lines::default(),
                });
            }
            Some(Err(e)) => {
                return Err(ManifestError::Json {
                    file: file.to_string(),
                    line: e.line(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Reads a file that must hold exactly mappings (objects); anything else is an error that
/// names the file and line.
pub fn read_objects(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let docs = read_file(path)?;
    let file = path.display().to_string();
    for d in &docs {
        require_object(&file, d)?;
    }
    Ok(docs)
}

/// Checks that a document is a mapping.
pub fn require_object(file: &str, doc: &Document) -> Result<(), ManifestError> {
    if doc.value.is_object() {
        Ok(())
    } else {
        Err(ManifestError::NotAnObject {
            file: file.to_string(),
            line: doc.line,
            found: json_type(&doc.value),
        })
    }
}

/// Where a YAML text uses what YAML readers read differently, as (line, what): a merge key
/// (`<<`: go-yaml under kustomize, kubectl, Helm and Argo CD merges it with its own precedence,
/// a tagged one only some readers merge), or a tag outside YAML's core schema (`! true`, a
/// custom `!thing`: kustomize re-emits `! true` as the boolean, gitgate's reader as a string).
/// A document that does either is not read by gitgate: what it says depends on the reader.
pub fn disputed(text: &str) -> Option<(usize, String)> {
    use granit_parser::{Event, Parser, ScalarStyle};
    // Neither can be there without its characters: most files are not parsed a second time.
    if !text.contains("<<") && !may_hold_a_tag(text) {
        return None;
    }
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            // Syntax errors are the parser's to report, with its line.
            return None;
        };
        let line = span.start.line();
        let tag = match &event {
            Event::Scalar(value, style, _, tag) => {
                if *style == ScalarStyle::Plain && value == "<<" {
                    return Some((line, "a merge key (`<<`)".into()));
                }
                tag
            }
            Event::MappingStart(_, _, tag) | Event::SequenceStart(_, _, tag) => tag,
            _ => continue,
        };
        if let Some(tag) = tag
            && tag.core_suffix().is_none()
        {
            return Some((
                line,
                format!(
                    "the tag `{}{}`, outside YAML's core schema",
                    tag.original_handle(),
                    tag.suffix()
                ),
            ));
        }
    }
    None
}

/// Whether a `!` of `text` may start a tag: only where a node may start, that is at the
/// start of the text or of a line (after its indentation), right after a flow indicator
/// (`[`, `{`, `,`) or a `:` (a JSON-like key), or after blanks that follow an indicator (`:`,
/// `-`, `?`, `[`, `{`, `,`: `a: !t`, `- !t`, `--- !t`) or an anchor (`&a !t`). A `!` inside
/// a scalar (`'!has(self.x)'`, `code!="200"`, `a != b`) is not one: a CRD's validation rules,
/// Prometheus rules and dashboards hold many, and their files need no second parse. The
/// answer errs on the side of a second parse, never the other way.
fn may_hold_a_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        if *b != b'!' {
            return false;
        }
        // The last byte of a byte-order mark, conservatively any 0xBF.
        if i == 0
            || matches!(
                bytes[i - 1],
                b'\n' | b'\r' | b'[' | b'{' | b',' | b':' | 0xBF
            )
        {
            return true;
        }
        if !matches!(bytes[i - 1], b' ' | b'\t') {
            return false;
        }
        // After blanks: what ends the token before them, on this line.
        let line = &bytes[..i];
        let Some(end) = line.iter().rposition(|c| !matches!(c, b' ' | b'\t')) else {
            return true;
        };
        if matches!(
            line[end],
            b'\n' | b'\r' | 0xBF | b':' | b'-' | b'?' | b'[' | b'{' | b','
        ) {
            return true;
        }
        // An anchor before it (`&a !t`, `[&a !t`, `{"k":&a !t`): any `&` in that token.
        let start = line[..end]
            .iter()
            .rposition(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
            .map_or(0, |p| p + 1);
        line[start..=end].contains(&b'&')
    })
}

/// How deep lists nest inside lists before an item is taken as it is (kustomize and kubectl
/// flatten any depth; a manifest is only so deep anyway).
const MAX_LIST_DEPTH: usize = 16;

/// Whether a document is a list: **any object with an `items` array**, whatever its kind, as
/// Flux's reader, kubectl (`meta.IsListType`) and Helm read one. Only the items are applied.
pub fn is_list(value: &Value) -> bool {
    value.get("items").is_some_and(Value::is_array)
}

/// Expands lists ([`is_list`]: `kind: List`, `ConfigMapList`, and any other object with an
/// `items` array) into their items, recursively (a list inside a list is flattened, as
/// kustomize does). Each item keeps its own line (the list's when it has none).
pub fn expand_lists(docs: Vec<Document>) -> Vec<Document> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        expand_into(doc, &mut out, 0);
    }
    out
}

fn expand_into(doc: Document, out: &mut Vec<Document>, depth: usize) {
    if !is_list(&doc.value) || depth >= MAX_LIST_DEPTH {
        out.push(doc);
        return;
    }
    let line = doc.line;
    let Some(Value::Array(items)) = doc.value.get("items") else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        // Each item's lines, re-rooted at the item.
        let prefix = format!("/items/{i}");
        let lines = Lines(
            doc.lines
                .0
                .iter()
                .filter_map(|(p, l)| p.strip_prefix(&prefix).map(|rest| (rest.to_string(), *l)))
                .filter(|(p, _)| p.is_empty() || p.starts_with('/'))
                .collect(),
        );
        let item = Document {
            value: item.clone(),
            line: lines.find("").unwrap_or(line),
            index: out.len(),
            lines,
        };
        expand_into(item, out, depth + 1);
    }
}

/// The JSON type name of a value, for error messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A serde-saphyr error in gitgate's words: its limits say which limit and why it exists
/// (`Nodes { nodes: 250001 }` becomes "more than 250000 YAML nodes (an alias bomb?)"), a
/// duplicate key names the key, without the library's advice about its own options; other
/// errors keep the parser's message without its location (gitgate puts `file:line:` in front).
pub fn yaml_error(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let mut e = e;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = e {
        e = error;
    }
    let limits = options().budget.unwrap_or_default();
    const BOMB: &str = "(an alias bomb?)";
    match e {
        E::Budget { breach, .. } => match breach {
            B::Nodes { .. } => format!("more than {} YAML nodes {BOMB}", limits.max_nodes),
            B::Events { .. } => format!("more than {} YAML events {BOMB}", limits.max_events),
            B::Aliases { .. } => format!("more than {} aliases {BOMB}", limits.max_aliases),
            B::Anchors { .. } => format!("more than {} anchors", limits.max_anchors),
            B::AliasAnchorRatio { aliases, anchors } => format!(
                "{aliases} aliases for {anchors} anchors, more than {} per anchor {BOMB}",
                limits.alias_anchor_ratio_multiplier
            ),
            B::RecordedAnchorEvents { .. } | B::RecordedAnchorBytes { .. } => {
                format!("anchors too large to repeat {BOMB}")
            }
            B::Depth { .. } => format!("nested deeper than {} levels", limits.max_depth),
            B::Documents { .. } => {
                format!("more than {} documents in one file", limits.max_documents)
            }
            B::ScalarBytes { .. } => format!(
                "more than {} bytes of text in values",
                limits.max_total_scalar_bytes
            ),
            B::MergeKeys { .. } => {
                format!("more than {} merge keys (`<<`)", limits.max_merge_keys)
            }
            B::InputBytes { .. } => format!("larger than {MAX_FILE_BYTES} bytes"),
            _ => "over the YAML parser's limits".to_string(),
        },
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => format!("aliases expand too far {BOMB}"),
        E::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate key `{key}`"),
        E::DuplicateMappingKey { key: None, .. } => "duplicate key".to_string(),
        E::UnknownAnchor { .. } => "an alias (`*name`) names no anchor (`&name`)".to_string(),
        _ => yaml_message(&e.to_string()),
    }
}

/// The message of a serde-saphyr error without its own `error: line N column M:` prefix
/// (gitgate puts `file:line:` in front).
pub fn yaml_message(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let line = match line.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, m)| m),
        None => line,
    };
    line.to_string()
}

/// Durations as people write them: `30s`, `2500ms`, `168h`, `1h 30m`.
pub fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({e}); write it like 30s, 2500ms or 168h"
        ))
    })
}

/// A duration written as [`duration`] reads it, in its largest whole unit (`168h`, `30s`,
/// `2500ms`): the defaults the configuration's JSON Schema shows (`gitgate config schema`).
pub fn write_duration<S: serde::Serializer>(
    d: &std::time::Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&duration_text(*d))
}

/// The text of a duration in its largest whole unit: `168h`, `90m`, `30s`, `2500ms`, `10ns`.
pub fn duration_text(d: std::time::Duration) -> String {
    let nanos = d.as_nanos();
    for (unit, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos != 0 && nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    if nanos == 0 {
        "0s".to_string()
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tag_is_found_wherever_a_node_may_start_and_a_bang_in_a_scalar_is_none() {
        for text in [
            "!thing a",
            "a: !thing b",
            "a:\n  !thing b",
            "- !thing b",
            "a: [!thing b]",
            "a: [x,!thing b]",
            "a: {b: !thing c}",
            "a: {\"b\":!thing c}",
            "a: {b:  !thing c}",
            "a: ! true",
            "--- !thing\na: b",
            "---  !thing\na: b",
            "a: &x !thing b",
            "a: [&x !thing b]",
            "a: [x,&y ! true]",
            "a: {\"k\":&x !thing v}",
            "[&x !t b]",
            "a:\t!thing b",
            "- - !thing b",
            "? !thing a\n: b",
            "a: [x, !thing b]",
            "a: {b: c,  !thing d: e}",
            "a:\n  - x\n  -   !thing b",
        ] {
            assert!(super::may_hold_a_tag(text), "{text:?}");
            assert!(super::disputed(text).is_some(), "{text:?}");
        }
        for text in [
            "rule: '!has(self.a) || has(self.b)'",
            "expr: sum(rate(x{code!=\"200\"}[5m]))",
            "a: \"!x\"",
            "a: b!c",
            "expr: up{job=\"a\"} != 1",
            "expr: |\n  sum(x) != 0 and y !~ \"z\"",
            "a: 'it is ! here'",
        ] {
            assert!(!super::may_hold_a_tag(text), "{text:?}");
            assert!(super::disputed(text).is_none(), "{text:?}");
        }
        assert!(super::may_hold_a_tag("\u{feff}!thing a"));
    }

    use super::*;

    #[test]
    fn durations_are_written_as_they_are_read() {
        use std::time::Duration;
        for (d, text) in [
            (Duration::from_secs(168 * 3600), "168h"),
            (Duration::from_secs(90 * 60), "90m"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(2500), "2500ms"),
            (Duration::from_nanos(10), "10ns"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(duration_text(d), text);
            assert_eq!(humantime::parse_duration(text).unwrap(), d, "{text}");
        }
    }

    #[test]
    fn without_lines_the_documents_read_the_same() {
        let deep = (0..40)
            .map(|i| format!("{}a{i}:\n", "  ".repeat(i)))
            .collect::<String>()
            + &"  ".repeat(40)
            + "x: 1\n";
        let big = (0..4000)
            .map(|i| format!("k{i}: v{i}\n"))
            .collect::<String>();
        for text in [
            "a: 1\nb: yes\nc: 0644\nd: ~\ne: 1.5\nf: [1, two, {g: h}]\n",
            "---\na: 1\n---\n\n---\nb: [x]\n",
            "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
            "1: one\ntrue: t\nnull: n\n",
            "a: |\n  text\n  more\nb: >-\n  folded\n",
            deep.as_str(),
            big.as_str(),
        ] {
            let lined = parse_str("t.yaml", text).unwrap();
            let plain = parse_str_with("t.yaml", text, false).unwrap();
            assert_eq!(lined.len(), plain.len(), "{text:?}");
            for (l, p) in lined.iter().zip(&plain) {
                assert_eq!(
                    (&l.value, l.line, l.index),
                    (&p.value, p.line, p.index),
                    "{text:?}"
                );
                assert!(p.lines.is_empty());
            }
        }
        // And on a reader's own thread, at any depth.
        let on_reader = std::thread::scope(|s| {
            deep_reader(s, || parse_str_with("t.yaml", &deep, false).unwrap())
                .unwrap()
                .join()
                .unwrap()
        });
        assert_eq!(
            on_reader,
            parse_str("t.yaml", &deep)
                .unwrap()
                .into_iter()
                .map(|mut d| {
                    d.lines = Lines::default();
                    d
                })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn multi_document_yaml_keeps_lines() {
        let text = "# leading comment\na: 1\n---\n\n---\nb: two\nc: [1, 2]\n";
        let docs = parse_str("x.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 2);
        assert_eq!(docs[1].line, 6);
        assert_eq!(docs[1].value["b"], "two");
    }

    #[test]
    fn field_lines_by_pointer_and_path() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: x1\n  - name: b\n    image: y1\n";
        let docs = parse_str("p.yaml", text).unwrap();
        let lines = &docs[0].lines;
        assert_eq!(lines.find("/spec/containers/1/image"), Some(10));
        assert_eq!(lines.find_path("spec.containers[1]"), Some(9));
        assert_eq!(
            lines.find_path("spec.containers[0].securityContext.privileged"),
            Some(7),
            "nearest ancestor"
        );
        assert_eq!(docs[0].value["spec"]["containers"][1]["image"], "y1");
    }

    #[test]
    fn scalars_read_as_kubectl_reads_them() {
        // kubectl (sigs.k8s.io/yaml, YAML 1.1 booleans) reads `on` and `yes` as true.
        let docs = parse_str("x.yaml", "a: on\nb: yes\nc: \"1.0\"\nd: 0.5\ne: 0644\n").unwrap();
        assert_eq!(docs[0].value["e"], 420, "octal, as kubectl reads it");
        assert_eq!(docs[0].value["a"], true);
        assert_eq!(docs[0].value["b"], true);
        assert_eq!(docs[0].value["c"], "1.0");
        assert_eq!(docs[0].value["d"], 0.5);
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let err = parse_str("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.yaml:"), "{msg}");
        assert!(err.line().unwrap() >= 2, "{msg}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                [prev.as_str(); 10].join(", ")
            ));
        }
        let err = parse_str("bomb.yaml", &text).unwrap_err();
        assert!(err.to_string().starts_with("bomb.yaml:"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse_str("dup.yaml", "a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dup.yaml:2: invalid YAML: duplicate key `a`"
        );
    }

    #[test]
    fn limits_are_said_in_gitgate_words() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..40 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                [prev.as_str(); 10].join(", ")
            ));
        }
        let deep = format!("a: {}{}\n", "[".repeat(70), "]".repeat(70));
        for (text, want) in [
            (bomb, "more than 250000 YAML nodes (an alias bomb?)"),
            (deep, "nested deeper than 64 levels"),
        ] {
            // On the test's own thread (2 MiB): deep YAML is read on a thread with room.
            let msg = parse_str("x.yaml", &text).unwrap_err().to_string();
            assert!(msg.starts_with("x.yaml:") && msg.ends_with(want), "{msg}");
            for library in ["budget", "Nodes {", "Depth {", "Options"] {
                assert!(!msg.contains(library), "{msg}");
            }
        }
    }

    #[test]
    fn json_stream_lines() {
        let docs = parse_str("x.json", "\n{\"a\": 1}\n\n{\"b\": 2}").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].line, docs[1].line), (2, 4));
        let err = parse_str("x.json", "{\"a\": }").unwrap_err();
        assert!(
            err.to_string().starts_with("x.json:1: invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn lists_expand() {
        let docs = parse_str(
            "l.yaml",
            "kind: List\nitems:\n- {kind: A}\n- {kind: B}\n---\nkind: C\n",
        )
        .unwrap();
        let docs = expand_lists(docs);
        let kinds: Vec<_> = docs.iter().map(|d| d.value["kind"].clone()).collect();
        assert_eq!(kinds, vec!["A", "B", "C"]);
    }

    #[test]
    fn binary_is_not_text() {
        let err = parse_bytes("b.yaml", &[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(matches!(err, ManifestError::NotText { .. }));
    }
}
