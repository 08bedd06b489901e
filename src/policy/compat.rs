//! Source rewrites that make OPA-valid Rego run the same on regorus, for the places where the
//! two parse differently. Each rewrite keeps every line where it was, so errors still point at
//! the author's lines, and leaves Rego that regorus already reads as OPA does untouched.
//!
//! - **Multi-body rules** (`violation[x] { a } { b }`, v0): regorus reads the second body as an
//!   `else` and refuses it for set rules. Each extra body gets its own copy of the head:
//!   `violation[x] { a } violation[x] { b }`, which is what OPA means by it.
//! - **A reference, a newline, then `(`**: OPA ends the expression at the newline; regorus
//!   reads a call (`input.parameters.x` then `(a - b) >= c` becomes `x(a - b)`). A `;` is put
//!   at the end of the first line.
//! - **`not f(a.b)` with an undefined argument**: OPA evaluates a call's arguments outside
//!   the negation, so an undefined argument makes the whole body fail; regorus makes the call
//!   undefined and the `not` true. Reference and call arguments are bound first, on the same
//!   line: `__gg1 := a.b; not f(__gg1)`.
//! - **`not x[key]` with an undefined key** (`deny if not allowed[input.x]` and no `input.x`):
//!   OPA evaluates the key outside the negation, so the body fails; regorus makes the lookup
//!   undefined and the `not` true, a verdict that differs. A reference or call key is bound
//!   first: `__gg1 := input.x; not allowed[__gg1]` (a one-line v1 body is braced to hold both).
//! - **`sprintf` with fewer arguments than verbs**: Go prints `%!v(MISSING)` for each verb
//!   without an argument; regorus fails the call. For a literal format and a literal argument
//!   list, the verbs without an argument are written out as Go would print them.
//! - **Deprecated built-in names** (`re_match`, `set_diff`): OPA still runs them; regorus
//!   does not know them. Calls are written by the names OPA made of them (`regex.match`,
//!   `minus`), same arguments, same result.
//! - **Imported functions** (`import data.lib.exclude_update.is_update`, then
//!   `is_update(x)`): regorus does not resolve the alias for calls, so calls use the full path.
//! - **A comprehension that declares a variable of the enclosing body again**
//!   (`name := ...; [name | input[i].n == name; name := input[i].m]`): OPA reads the uses
//!   before the `:=` as the outer variable and the `:=` as a new local of the comprehension
//!   (its head included); regorus refuses it ("used before definition"). The local gets a
//!   name of its own from its declaration on, and in the head: `[__ggc1_name | ... == name;
//!   __ggc1_name := input[i].m]`. Likewise a comprehension's `some i` under an `i` of the
//!   enclosing body.
//! - **`some i` of a rule used only inside its comprehensions** (`some i; a := [x | x :=
//!   input[i]]; b := {y | y := m[i]}`): the rule never binds `i`, so for OPA each comprehension
//!   binds its own; regorus fails at run time ("duplicated definition of local variable").
//!   Each comprehension gets its own name for it.
//! - **`x = r[x]`** (a variable unified with a reference that the same variable indexes,
//!   `container = containers[container]`): OPA binds `x` through the reference; regorus
//!   reads `x` as defined by the right side and refuses it as unsafe. The statement is
//!   written `r[x] == x`, which binds `x` the same way and means the same where it is bound.
//! - **An import after rules**: OPA reads imports anywhere at the top level of a module;
//!   regorus only before the first rule. A later import is moved to the end of the last line
//!   of the module's head (its package or last leading import), so no line moves.
//! - **`some i` after a statement that iterates** (`[n | parts := cmds[n]; some i; parts[i]
//!   == "apt"]`): regorus declares `i` again on the second iteration and fails ("duplicated
//!   definition of local variable"). A `some` declaration (without `in`) on a line of its own
//!   is moved to the start of its query, where OPA's meaning is the same (it scopes the
//!   variable to the whole query).
//! - **A `with` value that calls a function** (`deny with input as build({"t": f(1)})`):
//!   regorus evaluates the value where `input` is read, inside the rules it replaces it for,
//!   and a function called there that is already being evaluated is undefined; OPA's compiler
//!   evaluates such a value first, into a local. So does this rewrite: `__ggw1 := build({"t":
//!   f(1)}); deny with input as __ggw1`, on the statement's own lines.
//! - **Stand-ins for a host's built-ins**: a library written for a host that adds built-ins
//!   to OPA (`result.new(msg, cause)`) is tested with a small Rego file, passed as one more
//!   path, that defines each as a function of that name (`package result` with
//!   `new(msg, cause) := ...`). A call of such a name (or `with` naming it) that is neither a
//!   built-in nor an import alias of the module, where OPA would refuse the program, calls the
//!   stand-in: `data.result.new(msg, cause)`. A built-in without a namespace (`isManaged(x)`)
//!   is stood in for by a function of `package host`, where the module's package does not
//!   define that name itself.

use std::sync::LazyLock;

use regex::Regex;

/// The rule and function names of each package, over every module of one program, for
/// rewrites that must know what another file of the same package defines (tests in
/// `tests/x_test.rego` that write `with allowed as {...}` for a rule of `policy.rego`).
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub rules: std::collections::HashSet<String>,
    pub functions: std::collections::HashSet<String>,
}

static RULE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^(?:default[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*(\(|:=|=|\bif\b|\{|\bcontains\b|\[)",
    )
    .expect("a valid regex")
});

/// The package of a module text (`a.b` of `package a.b`).
fn package_name(text: &str) -> Option<String> {
    static PACKAGE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?m)^package[ \t]+([A-Za-z0-9_.]+)").expect("a valid regex"));
    PACKAGE.captures(text).map(|c| c[1].to_string())
}

/// [`Names`] per package (`a.b`), from the texts of a program's modules.
pub fn package_names<'t>(
    texts: impl IntoIterator<Item = &'t str>,
) -> std::collections::HashMap<String, Names> {
    let mut out: std::collections::HashMap<String, Names> = Default::default();
    for text in texts {
        let Some(package) = package_name(text) else {
            continue;
        };
        let names = out.entry(package).or_default();
        for c in RULE_NAME.captures_iter(text) {
            let name = c[1].to_string();
            if matches!(name.as_str(), "package" | "import" | "default" | "else") {
                continue;
            }
            if &c[2] == "(" {
                names.functions.insert(name);
            } else {
                names.rules.insert(name);
            }
        }
    }
    out
}

/// Rewrites `text`; returns it unchanged when nothing applies. The passes run one after the
/// other, each on the previous one's output, so their edits never overlap.
pub fn rewrite(text: &str) -> String {
    rewrite_in(text, None)
}

/// [`rewrite`], knowing the names `text`'s package defines in the program's other modules.
pub fn rewrite_in(text: &str, package: Option<&Names>) -> String {
    rewrite_with(text, package, None)
}

/// [`rewrite_in`], also knowing every package's names in the program (for stand-ins).
pub fn rewrite_with(
    text: &str,
    package: Option<&Names>,
    all: Option<&std::collections::HashMap<String, Names>>,
) -> String {
    let text = apply(text, deprecated_builtin_edits(text));
    let text = apply(&text, import_edits(&text));
    let text = apply(&text, late_import_edits(&text));
    let text = match all {
        Some(all) => apply(&text, stand_in_edits(&text, package, all)),
        None => text,
    };
    let text = apply(&text, structural_edits(&text));
    let text = apply(&text, braceless_not_index_edits(&text));
    let text = apply(&text, self_index_edits(&text));
    let text = apply(&text, some_declaration_edits(&text));
    let text = apply(&text, with_rule_edits(&text, package));
    let text = apply(&text, else_value_edits(&text));
    let text = apply(&text, sprintf_edits(&text));
    let text = apply(&text, comprehension_outer_some_edits(&text));
    let text = apply(&text, comprehension_shadow_edits(&text));
    let text = apply(&text, metadata_edits(&text));
    apply(&text, with_value_edits(&text))
}

/// Imports after the first rule, moved to the end of the head's last line (see the module
/// documentation); the import's own line is left empty.
fn late_import_edits(text: &str) -> Vec<(usize, usize, String)> {
    if !text.contains("import") {
        return Vec::new();
    }
    let mask = code_mask(text);
    let mut head_end: Option<usize> = None; // the end of the head's last line
    let mut in_rules = false;
    let mut moved = String::new();
    let mut edits = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim();
        if trimmed.is_empty() || !mask.get(start).copied().unwrap_or(false) {
            continue; // blank, a comment, or inside a raw string
        }
        let first_word = trimmed.split_whitespace().next().unwrap_or("");
        let at_column_0 = !body.starts_with([' ', '\t']);
        match first_word {
            "package" | "import" if !in_rules && at_column_0 => {
                head_end = Some(start + body.len());
            }
            "import" if in_rules && at_column_0 => {
                moved.push(' ');
                moved.push_str(trimmed.split('#').next().unwrap_or("").trim_end());
                edits.push((start, start + body.len(), String::new()));
            }
            _ => in_rules = true,
        }
    }
    match head_end {
        Some(end) if !moved.is_empty() => {
            edits.push((end, end, moved));
            edits
        }
        _ => Vec::new(),
    }
}

/// `some a, b` on a line of its own, after another statement of its query, moved to the start
/// of the query (see the module documentation): the line is left empty and `some a, b; ` is
/// written before the query's first statement.
fn some_declaration_edits(text: &str) -> Vec<(usize, usize, String)> {
    static SOME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?m)^[ \t]+some[ \t]+([A-Za-z_][A-Za-z0-9_]*(?:[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*(?:#[^\n]*)?$")
            .expect("a valid regex")
    });
    if !text.contains("some") {
        return Vec::new();
    }
    let mask = code_mask(text);
    let bytes = text.as_bytes();
    let mut edits = Vec::new();
    for c in SOME.captures_iter(text) {
        let whole = c.get(0).expect("group 0");
        let keyword = whole.start() + whole.as_str().find("some").expect("the keyword");
        if !mask[keyword] {
            continue;
        }
        // The start of the enclosing query: after an unmatched `{`, or after the `|` of a
        // comprehension at the same depth.
        let mut depth = 0i32;
        let mut start = None;
        let mut i = keyword;
        while i > 0 {
            i -= 1;
            if !mask[i] {
                continue;
            }
            match bytes[i] {
                b')' | b']' | b'}' => depth += 1,
                b'(' | b'[' if depth == 0 => break,
                b'(' | b'[' => depth -= 1,
                b'{' if depth == 0 => {
                    start = Some(i + 1);
                    break;
                }
                b'{' => depth -= 1,
                b'|' if depth == 0 => {
                    start = Some(i + 1);
                    break;
                }
                _ => {}
            }
        }
        let Some(start) = start else {
            continue;
        };
        // The query's first statement: the first code that is not blank.
        let Some(first) = (start..keyword).find(|&i| mask[i] && !bytes[i].is_ascii_whitespace())
        else {
            continue; // the declaration is already first
        };
        let vars = c[1].to_string();
        edits.push((first, first, format!("some {vars}; ")));
        let line_end = whole.end();
        edits.push((whole.start(), line_end, String::new()));
    }
    edits
}

/// `with target as value` where the value calls a function: the value is bound to a local
/// before the statement (see the module documentation).
fn with_value_edits(text: &str) -> Vec<(usize, usize, String)> {
    static WITH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bwith[ \t]+[A-Za-z_][A-Za-z0-9_.\[\]\x22]*[ \t]+as[ \t]+")
            .expect("a valid regex")
    });
    if !text.contains("with") {
        return Vec::new();
    }
    let mask = code_mask(text);
    let bytes = text.as_bytes();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut n = 0;
    let mut done_until = 0;
    for m in WITH.find_iter(text) {
        if m.start() < done_until || !mask[m.start()] {
            continue;
        }
        // The value: up to a newline, `;`, `#`, ` with ` or a closing bracket at depth 0.
        let start = m.end();
        let (mut depth, mut i) = (0i32, start);
        while i < bytes.len() {
            if mask[i] {
                match bytes[i] {
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' if depth == 0 => break,
                    b')' | b']' | b'}' => depth -= 1,
                    b'\n' | b';' | b'#' if depth == 0 => break,
                    b'w' if depth == 0
                        && text[i..].starts_with("with")
                        && i > 0
                        && bytes[i - 1].is_ascii_whitespace() =>
                    {
                        break;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        let value = text[start..i].trim_end();
        let end = start + value.len();
        if value.is_empty() || !(start..end).any(|j| mask[j] && bytes[j] == b'(') {
            continue;
        }
        // The statement's start: back to a newline, `;`, `{` or `|` at depth 0.
        let (mut depth, mut j) = (0i32, m.start());
        let mut stmt = None;
        while j > 0 {
            j -= 1;
            if !mask[j] {
                continue;
            }
            match bytes[j] {
                b')' | b']' | b'}' => depth += 1,
                b'(' | b'[' if depth == 0 => break,
                b'(' | b'[' => depth -= 1,
                b'{' if depth > 0 => depth -= 1,
                b'{' | b'|' | b';' | b'\n' if depth == 0 => {
                    stmt = Some(j + 1);
                    break;
                }
                _ => {}
            }
        }
        let Some(stmt) = stmt else {
            continue;
        };
        let Some(first) = (stmt..m.start()).find(|&k| !bytes[k].is_ascii_whitespace()) else {
            continue;
        };
        if edits.iter().any(|(s, _, _)| *s == first) {
            continue; // one value per statement; a second `with` stays as it is
        }
        n += 1;
        let local = format!("__ggw{n}");
        edits.push((first, first, format!("{local} := {value}; ")));
        edits.push((start, end, local));
        done_until = end;
    }
    edits
}

/// `x = r[x]` on a line of its own in a body → `r[x] == x` (see the module documentation).
fn self_index_edits(text: &str) -> Vec<(usize, usize, String)> {
    static UNIFY: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?m)^[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*([A-Za-z_][A-Za-z0-9_.]*\[[^\n#]*\][A-Za-z0-9_.]*)[ \t]*(?:#[^\n]*)?$",
        )
        .expect("a valid regex")
    });
    if !text.contains('=') {
        return Vec::new();
    }
    let mask = code_mask(text);
    let mut edits = Vec::new();
    for c in UNIFY.captures_iter(text) {
        let (var, rhs) = (c.get(1).expect("group 1"), c.get(2).expect("group 2"));
        if !mask[var.start()] || !mask[rhs.end() - 1] || var.as_str() == "_" {
            continue;
        }
        // The variable must index the reference: `[x]`, `[x]...`, `[_][x]`.
        let index = format!("[{}]", var.as_str());
        if !rhs.as_str().contains(&index) {
            continue;
        }
        edits.push((
            var.start(),
            rhs.end(),
            format!("{} == {}", rhs.as_str(), var.as_str()),
        ));
    }
    edits
}

/// A comprehension's `NAME :=` after a use of `NAME` in the same comprehension body (the
/// outer variable, for OPA): the declaration, the uses after it and those in the head get a
/// name of their own.
fn comprehension_shadow_edits(text: &str) -> Vec<(usize, usize, String)> {
    static DECLARE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:=").expect("a valid regex"));
    static WORD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").expect("a valid regex"));
    if !text.contains('|') || !text.contains(":=") {
        return Vec::new();
    }
    let mask = code_mask(text);
    let bytes = text.as_bytes();
    // A variable use: a whole word that is not a field (`.name`) nor an object key (`name:`).
    let uses = |from: usize, to: usize, name: &str| -> Vec<usize> {
        WORD.find_iter(&text[from..to])
            .filter(|m| m.as_str() == name && mask[from + m.start()])
            .map(|m| from + m.start())
            .filter(|&at| at == 0 || bytes[at - 1] != b'.')
            .collect()
    };
    let mut edits = Vec::new();
    let mut counter = 0;
    let comprehensions: Vec<(usize, usize, usize)> = brackets(text, &mask)
        .into_iter()
        .filter(|b| b.0 != b'(')
        .filter_map(|(_, start, end, bar)| bar.map(|bar| (start, bar, end)))
        .collect();
    static SOME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bsome[ \t]+([A-Za-z_][A-Za-z0-9_]*(?:[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*(?:;|\n|$)")
            .expect("a valid regex")
    });
    // Declared before `at` in the text, outside `start..end` (`some x`, `x :=`): a variable
    // of an enclosing body the comprehension's own `some x` shadows.
    let declared_before = |name: &str, start: usize| -> bool {
        let before = &text[..start];
        SOME.captures_iter(before).any(|c| {
            mask[c.get(0).expect("match").start()] && c[1].split(',').any(|v| v.trim() == name)
        }) || DECLARE.captures_iter(before).any(|c| {
            let m = c.get(1).expect("group 1");
            m.as_str() == name
                && mask[m.start()]
                && (m.start() == 0 || bytes[m.start() - 1] != b'.')
        })
    };
    for &(start, bar, end) in &comprehensions {
        // Nested comprehensions already renamed are left to their own pass.
        if comprehensions_overlap(&edits, start, end) {
            continue;
        }
        // A declaration inside a comprehension nested in this one is that one's own (`{v |
        // a := {r | r := x[_]}; ...}`: its head's `r` is no use before the declaration).
        let nested = |at: usize| {
            comprehensions
                .iter()
                .any(|&(s, _, e)| s > bar && e < end && (s..e).contains(&at))
        };
        let body = &text[bar + 1..end];
        // (name, where its own declaration starts)
        let mut own: Vec<(String, usize)> = Vec::new();
        for c in DECLARE.captures_iter(body) {
            let name = c.get(1).expect("group 1");
            let at = bar + 1 + name.start();
            let n = name.as_str();
            if !mask[at] || (at > 0 && bytes[at - 1] == b'.') || n == "_" || nested(at) {
                continue;
            }
            // Used before its declaration in this body: OPA's outer variable.
            if !uses(bar + 1, at, n).is_empty() && !own.iter().any(|(o, _)| o == n) {
                own.push((n.to_string(), at));
            }
        }
        for c in SOME.captures_iter(body) {
            let whole = c.get(0).expect("match");
            if !mask[bar + 1 + whole.start()] {
                continue;
            }
            let at = bar + 1 + whole.start();
            if nested(at) {
                continue;
            }
            for n in c[1].split(',').map(str::trim) {
                if n != "_" && declared_before(n, start) && !own.iter().any(|(o, _)| o == n) {
                    own.push((n.to_string(), at));
                }
            }
        }
        for (n, at) in own {
            counter += 1;
            let local = format!("__ggc{counter}_{n}");
            for u in uses(start + 1, bar, &n)
                .into_iter()
                .chain(uses(at, end, &n))
            {
                edits.push((u, u + n.len(), local.clone()));
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    edits.dedup_by_key(|e| e.0);
    edits
}

/// The brackets of `text` (code only): (opening byte, start, end, the `|` directly inside).
fn brackets(text: &str, mask: &[bool]) -> Vec<(u8, usize, usize, Option<usize>)> {
    let mut stack: Vec<(u8, usize, Option<usize>)> = Vec::new();
    let mut out = Vec::new();
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if !mask[i] {
            continue;
        }
        match b {
            b'[' | b'{' | b'(' => stack.push((b, i, None)),
            b']' | b'}' | b')' => {
                if let Some((open, start, bar)) = stack.pop() {
                    out.push((open, start, i, bar));
                }
            }
            b'|' => {
                // A comprehension's head is one term: a `|` after a statement (a newline, a
                // `;` or an assignment since the bracket opened) is a set union in a body.
                if let Some((open, start, bar @ None)) = stack.last_mut()
                    && *open != b'('
                {
                    let head = &text[*start + 1..i];
                    if !head.contains(['\n', ';']) && !head.contains(":=") {
                        *bar = Some(i);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A rule body's `some NAME` whose every other use is inside the body's comprehensions: each
/// comprehension (the outermost ones of the body) gets its own name for it.
fn comprehension_outer_some_edits(text: &str) -> Vec<(usize, usize, String)> {
    static SOME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bsome[ \t]+([A-Za-z_][A-Za-z0-9_]*(?:[ \t]*,[ \t]*[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*(?:;|\n|$)")
            .expect("a valid regex")
    });
    static WORD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").expect("a valid regex"));
    if !text.contains('|') || !text.contains("some") {
        return Vec::new();
    }
    let mask = code_mask(text);
    let bytes = text.as_bytes();
    let all = brackets(text, &mask);
    let comprehensions: Vec<(usize, usize, usize)> = all
        .iter()
        .filter(|b| b.0 != b'(')
        .filter_map(|&(_, start, end, bar)| bar.map(|bar| (start, bar, end)))
        .collect();
    let inside_any = |at: usize, from: usize, to: usize| {
        comprehensions
            .iter()
            .any(|&(s, _, e)| s > from && e < to && at > s && at < e)
    };
    let uses = |from: usize, to: usize, name: &str| -> Vec<usize> {
        WORD.find_iter(&text[from..to])
            .filter(|m| m.as_str() == name && mask[from + m.start()])
            .map(|m| from + m.start())
            .filter(|&at| at == 0 || bytes[at - 1] != b'.')
            .collect()
    };
    let mut edits = Vec::new();
    let mut counter = 0;
    // Rule bodies: `{` blocks that are not comprehensions nor inside one.
    for &(open, start, end, bar) in &all {
        if open != b'{' || bar.is_some() || inside_any(start, 0, text.len()) {
            continue;
        }
        let body = &text[start + 1..end];
        for c in SOME.captures_iter(body) {
            let decl = start + 1 + c.get(0).expect("match").start();
            if !mask[decl] || inside_any(decl, start, end) {
                continue;
            }
            let names = start + 1 + c.get(1).expect("group 1").start();
            let declared: Vec<&str> = c[1].split(',').map(str::trim).collect();
            // Every name used only inside comprehensions (else the rule binds it: leave it).
            let only_inside = declared.iter().all(|n| {
                *n != "_"
                    && uses(start + 1, end, n)
                        .into_iter()
                        .filter(|&u| {
                            !inside_any(u, start, end) && !(names..names + c[1].len()).contains(&u)
                        })
                        .count()
                        == 0
            });
            if !only_inside {
                continue;
            }
            // The declaration goes (regorus fails on it), the line stays: `true`.
            edits.push((decl, names + c[1].len(), "true".to_string()));
            for n in declared {
                // The outermost comprehensions of this body.
                for &(cs, _, ce) in &comprehensions {
                    if cs <= start || ce >= end || inside_any(cs, start, end) {
                        continue;
                    }
                    let found = uses(cs + 1, ce, n);
                    if found.is_empty() {
                        continue;
                    }
                    counter += 1;
                    let local = format!("__ggs{counter}_{n}");
                    for u in found {
                        edits.push((u, u + n.len(), local.clone()));
                    }
                }
            }
        }
    }
    edits.sort_by_key(|e| e.0);
    edits.dedup_by_key(|e| e.0);
    edits
}

/// Whether an edit already falls within `start..end` (one rename per comprehension a pass).
fn comprehensions_overlap(edits: &[(usize, usize, String)], start: usize, end: usize) -> bool {
    edits.iter().any(|e| e.0 > start && e.0 < end)
}

/// `with name as value` where `name` is a rule of this module (OPA resolves a bare rule name
/// against the package; regorus answers "undefined rule"): the target is written by its full
/// path, `with data.pkg.name as value`. Functions (`with f as g`) are left as they are.
fn with_rule_edits(text: &str, others: Option<&Names>) -> Vec<(usize, usize, String)> {
    static WITH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\bwith[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+as\b").expect("a valid regex")
    });
    if !text.contains("with") {
        return Vec::new();
    }
    let Some(package) = package_name(text) else {
        return Vec::new();
    };
    let own = package_names([text]).remove(&package).unwrap_or_default();
    let mask = code_mask(text);
    let mut edits = Vec::new();
    for c in WITH.captures_iter(text) {
        let name = c.get(1).expect("group 1");
        let n = name.as_str();
        if matches!(n, "input" | "data") || !mask[name.start()] {
            continue;
        }
        let is_rule = own.rules.contains(n) || others.is_some_and(|o| o.rules.contains(n));
        let is_function =
            own.functions.contains(n) || others.is_some_and(|o| o.functions.contains(n));
        if is_rule && !is_function {
            edits.push((name.start(), name.end(), format!("data.{package}.{n}")));
        }
    }
    edits
}

/// `f(x) := m[k] if { k := x.k } else := 0`: regorus evaluates the first clause's value with
/// the body's variables unbound ("multiple outputs"); OPA binds them first. The value moves
/// to the end of the body: `f(x) := __ggv1 if { k := x.k; __ggv1 := m[k] } else := 0`.
fn else_value_edits(text: &str) -> Vec<(usize, usize, String)> {
    static HEAD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?m)^[A-Za-z_][A-Za-z0-9_.]*(?:\([^()\n]*\))?[ \t]*:?=[ \t]*([^{}\n#\x22`]+?)(?:[ \t]+if)?[ \t]*\{",
        )
        .expect("a valid regex")
    });
    let mask = code_mask(text);
    let mut edits = Vec::new();
    let mut n = 0;
    for c in HEAD.captures_iter(text) {
        let whole = c.get(0).expect("the match");
        let value = c.get(1).expect("the value");
        if !mask[whole.start()] || !value.as_str().contains(['[', '(']) {
            continue;
        }
        let open = whole.end() - 1;
        let Some(close) = matching_close(text, open, text.len()) else {
            continue;
        };
        if !text[close + 1..].trim_start().starts_with("else") {
            continue;
        }
        n += 1;
        let var = format!("__ggv{n}");
        let line_start = text[..close].rfind('\n').map_or(0, |p| p + 1);
        let sep = if text[line_start..close].trim().is_empty() {
            ""
        } else {
            "; "
        };
        edits.push((value.start(), value.end(), var.clone()));
        edits.push((
            close,
            close,
            format!("{sep}{var} := {} ", value.as_str().trim()),
        ));
    }
    edits
}

/// `rego.metadata.rule()` and `rego.metadata.chain()`, which regorus does not have, written
/// as the literal value OPA would return: the METADATA block above the enclosing rule (its
/// `scope` `rule` unless it says otherwise), `{}` without one; the chain is the rule's entry
/// then the package's, as OPA orders it.
fn metadata_edits(text: &str) -> Vec<(usize, usize, String)> {
    const RULE: &str = "rego.metadata.rule()";
    const CHAIN: &str = "rego.metadata.chain()";
    if !text.contains(RULE) && !text.contains(CHAIN) {
        return Vec::new();
    }
    let mask = code_mask(text);
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |at, l| {
            let start = *at;
            *at += l.len();
            Some((start, l.trim_end_matches(['\n', '\r'])))
        })
        .collect();
    // The METADATA block directly above line `i`, as JSON, with its default scope.
    let block_above = |i: usize, scope: &str| -> Option<serde_json::Value> {
        let mut start = i;
        while start > 0 && lines[start - 1].1.starts_with('#') {
            start -= 1;
        }
        let meta = (start..i)
            .rev()
            .find(|&j| lines[j].1.trim() == "# METADATA")?;
        let yaml: String = lines[meta + 1..i]
            .iter()
            .map(|(_, l)| {
                let l = l.trim_start_matches('#');
                l.strip_prefix(' ').unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut value: serde_json::Value = serde_saphyr::from_str(&yaml).ok()?;
        let object = value.as_object_mut()?;
        object
            .entry("scope")
            .or_insert_with(|| serde_json::Value::from(scope));
        Some(value)
    };
    let package_line = lines.iter().position(|(_, l)| l.starts_with("package "));
    let package: Vec<String> = package_line
        .map(|i| {
            lines[i].1["package ".len()..]
                .split('#')
                .next()
                .unwrap_or("")
                .trim()
                .split('.')
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut edits = Vec::new();
    for call in [RULE, CHAIN] {
        for (at, _) in text.match_indices(call) {
            if !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            // The rule: the last line before `at` that starts a top-level statement.
            let line = lines.partition_point(|(start, _)| *start <= at) - 1;
            let Some(rule_line) = (0..=line).rev().find(|&i| {
                let l = lines[i].1;
                l.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && !l.starts_with("else")
            }) else {
                continue;
            };
            let rule_text = lines[rule_line].1;
            let name: String = rule_text
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let annotations = block_above(rule_line, "rule");
            let value = if call == RULE {
                annotations.unwrap_or_else(|| serde_json::json!({}))
            } else {
                let mut path: Vec<String> = vec!["data".into()];
                path.extend(package.iter().cloned());
                let full: Vec<String> = path.iter().cloned().chain([name]).collect();
                let mut rule = serde_json::json!({"path": full});
                if let Some(a) = annotations {
                    rule["annotations"] = a;
                }
                let mut chain = vec![rule];
                if let Some(a) = package_line.and_then(|i| block_above(i, "package")) {
                    chain.push(serde_json::json!({"path": path, "annotations": a}));
                }
                serde_json::Value::Array(chain)
            };
            edits.push((at, at + call.len(), value.to_string()));
        }
    }
    edits
}

/// `head if not x[key]` on one line, a body of one negated lookup without braces (Rego v1):
/// the key is bound first, as [`hoist_not_index`] does in a braced body, the body braced to
/// hold both: `head if { __gg1 := key; not x[__gg1] }`.
fn braceless_not_index_edits(text: &str) -> Vec<(usize, usize, String)> {
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?m)^([^#\n{}]*\bif[ \t]+)not[ \t]+([A-Za-z_][A-Za-z0-9_.]*)\[([^\n]+)\][ \t]*(#[^\n]*)?$")
            .expect("a valid regex")
    });
    let mask = code_mask(text);
    let mut edits = Vec::new();
    let mut counter = 1000;
    for c in LINE.captures_iter(text) {
        let whole = c.get(0).expect("the match");
        let (head, name, key) = (c.get(1).expect("head"), &c[2], c[3].trim());
        if !mask.get(whole.start()).copied().unwrap_or(false) || head.as_str().contains('"') {
            continue;
        }
        // The key must be one bracket's content (`x[a][b]` is left alone).
        if !is_ref_or_call(key) || key.contains("][") {
            continue;
        }
        counter += 1;
        let var = format!("__gg{counter}");
        let end = c.get(4).map_or(whole.end(), |m| m.start());
        edits.push((
            head.end(),
            end,
            format!("{{ {var} := {key}; not {name}[{var}] }} "),
        ));
    }
    edits
}

/// Applies non-overlapping replacements `(start, end, text)`.
fn apply(text: &str, mut edits: Vec<(usize, usize, String)>) -> String {
    if edits.is_empty() {
        return text.to_string();
    }
    // From the end, so that offsets stay valid.
    edits.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = text.to_string();
    let mut last_start = usize::MAX;
    for (start, end, insert) in edits {
        if end > last_start {
            continue; // a pass never makes overlapping edits; be safe anyway
        }
        out.replace_range(start..end, &insert);
        last_start = start;
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Open {
    Paren,
    Bracket,
    Brace,
}

/// Edits for multi-body rules and for reference-newline-parenthesis, from one pass of a small
/// lexer that knows strings, raw strings, comments and bracket nesting.
fn structural_edits(text: &str) -> Vec<(usize, usize, String)> {
    let bytes = text.as_bytes();
    let mut edits = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    // Start of the current top-level statement, and the offset of its first body `{`.
    let mut rule_start: Option<usize> = None;
    let mut head_end: Option<usize> = None;
    // Whether the last significant token at depth 0 was a `}` closing a rule body.
    let mut after_body = false;
    // The end of the last significant character, and that character (for rewrite B).
    let mut last_sig: Option<(usize, u8)> = None;
    let mut at_line_start = true;
    // Whether the open top-level `{` is a value (`= {...}`, `contains {...}`), not a body.
    let mut top_literal = false;
    let mut hoisted = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\n' => {
                at_line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let line_start = at_line_start;
        at_line_start = false;
        if stack.is_empty()
            && line_start
            && c != b'{'
            && c != b'}'
            && !text[i..].starts_with("else")
        {
            // A new top-level statement (package, import, rule).
            rule_start = Some(i);
            head_end = None;
            after_body = false;
        }
        if (line_start || last_sig.is_some_and(|(_, c)| matches!(c, b'{' | b';')))
            && stack.last() == Some(&Open::Brace)
            && text[i..].starts_with("not ")
            && let Some(edit) = hoist_not_arguments(text, i, &mut hoisted)
        {
            edits.push(edit);
        }
        if line_start
            && c == b'('
            && stack.last() == Some(&Open::Brace)
            && let Some((end, prev)) = last_sig
            && (prev.is_ascii_alphanumeric() || matches!(prev, b'_' | b']' | b')' | b'"' | b'`'))
        {
            edits.push((end, end, ";".to_string()));
        }
        match c {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'(' => stack.push(Open::Paren),
            b'[' => stack.push(Open::Bracket),
            b'{' => {
                let before = text[..i].trim_end();
                if stack.is_empty() && (before.ends_with('=') || before.ends_with("contains")) {
                    top_literal = true;
                } else if stack.is_empty() {
                    if after_body {
                        if let (Some(start), Some(end)) = (rule_start, head_end) {
                            let head: String = text[start..end]
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ");
                            edits.push((i, i, format!("{head} ")));
                        }
                    } else if head_end.is_none() {
                        head_end = Some(i);
                    }
                    after_body = false;
                }
                stack.push(Open::Brace);
            }
            b')' | b']' => {
                stack.pop();
            }
            b'}' => {
                stack.pop();
                if stack.is_empty() && std::mem::take(&mut top_literal) {
                    after_body = false;
                } else if stack.is_empty() {
                    after_body = true;
                    last_sig = Some((i + 1, c));
                    i += 1;
                    continue;
                }
            }
            _ => {
                if stack.is_empty() {
                    after_body = false;
                }
            }
        }
        let end = (i + 1).min(bytes.len());
        last_sig = Some((end, bytes[end - 1]));
        i += 1;
    }
    edits
}

/// For a line `not f(args)` starting at `at`, binds reference and call arguments first.
fn hoist_not_arguments(
    text: &str,
    at: usize,
    counter: &mut usize,
) -> Option<(usize, usize, String)> {
    let line_end = text[at..].find('\n').map_or(text.len(), |e| at + e);
    let line = &text[at..line_end];
    if line.contains(" with ") {
        return None; // `with` applies to the arguments too; leave such lines as they are
    }
    let rest = line.strip_prefix("not ")?.trim_start();
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    if name_len > 0 && rest[name_len..].starts_with('[') {
        return hoist_not_index(text, (at, line_end), rest, name_len, counter);
    }
    if name_len == 0 || !rest[name_len..].starts_with('(') {
        return None;
    }
    let open = at + (line.len() - rest.len()) + name_len;
    let close = matching_close(text, open, line_end)?;
    if !ends_expression(&text[close + 1..line_end]) {
        return None;
    }
    let args = split_top_level(&text[open + 1..close]);
    let mut bindings = String::new();
    let mut new_args = Vec::with_capacity(args.len());
    for arg in args {
        let a = arg.trim();
        if is_ref_or_call(a) {
            *counter += 1;
            let var = format!("__gg{counter}");
            bindings.push_str(&format!("{var} := {a}; "));
            new_args.push(var);
        } else {
            new_args.push(a.to_string());
        }
    }
    if bindings.is_empty() {
        return None;
    }
    let name = &text[at + (line.len() - rest.len())..open];
    Some((
        at,
        close + 1,
        format!("{bindings}not {name}({})", new_args.join(", ")),
    ))
}

/// For a line `not x[key]` (a set membership or an object lookup, nothing after it), binds a
/// reference or call `key` first: OPA evaluates it outside the negation, so an undefined key
/// makes the body fail, where regorus makes `x[key]` undefined and the `not` true (a verdict
/// that differs: `deny if not allowed[input.x]` with no `input.x`).
fn hoist_not_index(
    text: &str,
    (at, line_end): (usize, usize),
    rest: &str,
    name_len: usize,
    counter: &mut usize,
) -> Option<(usize, usize, String)> {
    let line = &text[at..line_end];
    let open = at + (line.len() - rest.len()) + name_len;
    let close = matching_close(text, open, text.len())?;
    if close >= line_end || !ends_expression(&text[close + 1..line_end]) {
        return None;
    }
    let key = text[open + 1..close].trim();
    if !is_ref_or_call(key) {
        return None;
    }
    *counter += 1;
    let var = format!("__gg{counter}");
    let name = &text[at + (line.len() - rest.len())..open];
    Some((at, close + 1, format!("{var} := {key}; not {name}[{var}]")))
}

/// Whether what follows a negated expression on its line ends it: nothing, a comment, `;` or
/// the `}` closing a one-line body (`deny if { not allowed[input.x] }`).
fn ends_expression(tail: &str) -> bool {
    let tail = tail.trim();
    tail.is_empty() || tail.starts_with(['#', ';', '}'])
}

/// Whether an operand is a reference or a call (what OPA evaluates outside a negation), not a
/// variable, a literal or one of the bindings these rewrites made.
fn is_ref_or_call(operand: &str) -> bool {
    let first = operand.chars().next().unwrap_or(' ');
    (first.is_ascii_alphabetic() || first == '_')
        && operand.contains(['.', '[', '('])
        && !operand.starts_with("__gg")
}

/// The bracket that closes the one at `open` (`(`, `[` or `{`) before `limit`, nesting
/// counted in code only (strings, raw strings and comments are skipped, as [`code_mask`]
/// reads them); `None` when a bracket of another kind closes it, or none does.
fn matching_close(text: &str, open: usize, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let limit = limit.min(bytes.len());
    let want = match bytes.get(open)? {
        b'(' => b')',
        b'[' => b']',
        b'{' => b'}',
        _ => return None,
    };
    let mut depth = 0usize;
    let mut i = open;
    while i < limit {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < limit && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < limit && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'#' => {
                while i < limit && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (bytes[i] == want).then_some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits call arguments at top-level commas.
fn split_top_level(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut in_str, mut prev) = (0i32, 0usize, false, ' ');
    for (i, c) in args.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' | '[' | '{' if !in_str => depth += 1,
            ')' | ']' | '}' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    if !args[start..].trim().is_empty() {
        out.push(&args[start..]);
    }
    out
}

/// Edits that write out the verbs of a literal `sprintf` format that have no argument.
fn sprintf_edits(text: &str) -> Vec<(usize, usize, String)> {
    let mut edits = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("sprintf(") {
        let open = from + found + "sprintf".len();
        from = open + 1;
        let rest = &text[open + 1..];
        let lead = rest.len() - rest.trim_start().len();
        let fmt_start = open + 1 + lead;
        if !text[fmt_start..].starts_with('"') {
            continue;
        }
        let Some(fmt_len) = string_literal_len(&text[fmt_start..]) else {
            continue;
        };
        let fmt_end = fmt_start + fmt_len; // one past the closing quote
        let after = text[fmt_end..].trim_start();
        let Some(after_comma) = after.strip_prefix(',') else {
            continue;
        };
        let list = after_comma.trim_start();
        if !list.starts_with('[') {
            continue;
        }
        let list_at = text.len() - list.len();
        let Some(list_end) = matching_close(text, list_at, text.len()) else {
            continue;
        };
        let given = split_top_level(&text[list_at + 1..list_end]).len();
        let format = &text[fmt_start + 1..fmt_end - 1];
        if let Some(fixed) = write_out_missing_verbs(format, given) {
            edits.push((fmt_start + 1, fmt_end - 1, fixed));
        }
    }
    edits
}

/// Length of the string literal at the start of `s` (quotes included).
fn string_literal_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// A Go format with the verbs past the `given` arguments replaced by Go's `%!v(MISSING)`
/// text, or `None` when every verb has an argument.
fn write_out_missing_verbs(format: &str, given: usize) -> Option<String> {
    let mut out = String::with_capacity(format.len() + 16);
    let mut verbs = 0;
    let mut changed = false;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::from("%");
        let mut verb = None;
        while let Some(&(_, n)) = chars.peek() {
            chars.next();
            spec.push(n);
            if n.is_ascii_alphabetic() || n == '%' {
                verb = Some(n);
                break;
            }
        }
        match verb {
            Some('%') => out.push_str(&spec),
            Some(v) => {
                verbs += 1;
                if verbs > given {
                    out.push_str(&format!("%%!{v}(MISSING)"));
                    changed = true;
                } else {
                    out.push_str(&spec);
                }
            }
            None => out.push_str(&spec),
        }
    }
    changed.then_some(out)
}

static IMPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*import\s+(data(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?\s*$")
        .expect("valid regex")
});

/// Edits that write uses of an imported name by its full path: calls (`f(` after
/// `import data.x.f`) and references into an imported package (`w.rule`, `w[k]` after
/// `import data.lib.workloads as w`). Besides the missing call resolution, regorus evaluates a
/// whole imported package to read one rule through its alias (84 µs instead of 14 µs for
/// the built-in library's helpers).
fn import_edits(text: &str) -> Vec<(usize, usize, String)> {
    let mut edits = Vec::new();
    let mut code: Option<Vec<bool>> = None;
    for cap in IMPORT.captures_iter(text) {
        let path = &cap[1];
        let alias = cap
            .get(2)
            .map(|m| m.as_str())
            .unwrap_or_else(|| path.rsplit('.').next().unwrap_or(path));
        let import_line = cap.get(0).expect("group 0").range();
        let code = code.get_or_insert_with(|| code_mask(text));
        let uses = Regex::new(&format!(
            r"(^|[^A-Za-z0-9_.])({})([(.\[])",
            regex::escape(alias)
        ))
        .expect("escaped alias");
        for m in uses.captures_iter(text) {
            let g = m.get(2).expect("group 2");
            if import_line.contains(&g.start()) || !code[g.start()] {
                continue; // the import itself, or text in a string or a comment
            }
            // Leave the author's own definition of a same-named function alone.
            let line_start = text[..g.start()].rfind('\n').map_or(0, |p| p + 1);
            if &m[3] == "("
                && text[line_start..g.start()].trim().is_empty()
                && defines_at(text, g.end() + 1)
            {
                continue;
            }
            edits.push((g.start(), g.end(), path.to_string()));
        }
    }
    edits
}

/// Calls of a host's built-in (`result.new(`, `with ec.oci.blob as`) that a Rego function of
/// the program stands in for (`data.result.new`), written by the function's full path. Only
/// where the name is not a built-in (nor a host function) and its first part is not a name
/// the module imports: there OPA refuses the program, so no program OPA runs changes meaning.
fn stand_in_edits(
    text: &str,
    own: Option<&Names>,
    all: &std::collections::HashMap<String, Names>,
) -> Vec<(usize, usize, String)> {
    static NAME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(^|[^A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)([ \t]*\(|[ \t]+as\b)")
            .expect("a valid regex")
    });
    if all.is_empty() {
        return Vec::new();
    }
    let aliases: std::collections::HashSet<String> = IMPORT
        .captures_iter(text)
        .map(|c| {
            c.get(2)
                .map(|m| m.as_str().to_string())
                .unwrap_or_else(|| c[1].rsplit('.').next().unwrap_or(&c[1]).to_string())
        })
        .collect();
    let here = package_name(text)
        .and_then(|p| package_names([text]).remove(&p))
        .unwrap_or_default();
    let mut mask: Option<Vec<bool>> = None;
    let mut edits = Vec::new();
    // Searched on from each name's end, so that `f(g.h(x))` finds `g.h` after `f(`.
    let mut from = 0;
    while let Some(c) = NAME.captures_at(text, from) {
        let name = c.get(2).expect("group 2");
        from = name.end();
        let n = name.as_str();
        let (package, function) = match n.rsplit_once('.') {
            Some((package, function)) => {
                let head = n.split('.').next().unwrap_or(n);
                if matches!(head, "data" | "input") || aliases.contains(head) {
                    continue;
                }
                (package, function)
            }
            // A built-in without a namespace: a function of `package host`, where the
            // module's package does not define that name itself.
            None => {
                let defined =
                    |names: &Names| names.functions.contains(n) || names.rules.contains(n);
                if aliases.contains(n) || defined(&here) || own.is_some_and(defined) {
                    continue;
                }
                (STAND_IN_PACKAGE, n)
            }
        };
        if !all
            .get(package)
            .is_some_and(|p| p.functions.contains(function))
        {
            continue;
        }
        if regorus::unstable::BUILTINS.contains_key(n)
            || super::host::FUNCTIONS.iter().any(|(f, _)| *f == n)
        {
            continue;
        }
        // A call, or the target of `with`.
        // (Not a window of bytes before it: one could begin inside a character.)
        let before = &text[..name.start()];
        let with_target = before.ends_with([' ', '\t'])
            && before
                .trim_end()
                .strip_suffix("with")
                .is_some_and(|rest| !rest.ends_with(|c: char| c.is_alphanumeric() || c == '_'));
        if c[3].trim_start().starts_with("as") && !with_target {
            continue;
        }
        let mask = mask.get_or_insert_with(|| code_mask(text));
        if !mask[name.start()] {
            continue;
        }
        let line_start = text[..name.start()].rfind('\n').map_or(0, |p| p + 1);
        if c[3].ends_with('(')
            && text[line_start..name.start()].trim().is_empty()
            && defines_at(text, name.end() + c[3].len())
        {
            continue; // a definition of that name
        }
        let path = if n.contains('.') {
            format!("data.{n}")
        } else {
            format!("data.{STAND_IN_PACKAGE}.{n}")
        };
        edits.push((name.start(), name.end(), path));
    }
    edits
}

/// The package of stand-ins for a host's built-ins that have no namespace (`isManaged(x)`
/// is stood in for by `isManaged` of `package host`).
pub const STAND_IN_PACKAGE: &str = "host";

/// OPA's deprecated built-in names that regorus does not know, each with the name OPA made of
/// it (same arguments, same result).
/// (`all` and `any` have no one-call equivalent in regorus: they are host functions,
/// `policy::host`.)
const DEPRECATED_BUILTINS: &[(&str, &str)] = &[("re_match", "regex.match"), ("set_diff", "minus")];

/// Calls of OPA's deprecated built-ins written by their current names (`re_match(p, s)` →
/// `regex.match(p, s)`), in code only, and only where the policy does not define a function
/// of that name itself.
fn deprecated_builtin_edits(text: &str) -> Vec<(usize, usize, String)> {
    let mask = code_mask(text);
    let mut edits = Vec::new();
    for (old, new) in DEPRECATED_BUILTINS {
        let call = format!("{old}(");
        let mut from = 0;
        while let Some(found) = text[from..].find(&call) {
            let at = from + found;
            from = at + call.len();
            let before = text[..at].chars().next_back();
            let is_name_start =
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !is_name_start || !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            // A function of that name defined by the policy keeps its own meaning.
            if defines_at(text, at + call.len() - 1) || text.contains(&format!("\n{old}(")) {
                continue;
            }
            edits.push((at, at + old.len(), new.to_string()));
        }
    }
    edits
}

/// For each byte of `text`, whether it is code (not inside a string, raw string or comment).
pub(crate) fn code_mask(text: &str) -> Vec<bool> {
    let bytes = text.as_bytes();
    let mut mask = vec![true; bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        let end = (i + 1).min(bytes.len());
        mask[start..end].iter_mut().for_each(|m| *m = false);
        i = end;
    }
    mask
}

/// Whether the `(` just before `at` opens a function definition's parameters (`f(x) {`, `:=`,
/// `=`, `if` after the closing parenthesis).
fn defines_at(text: &str, at: usize) -> bool {
    let rest = &text[at..];
    let Some(close) = rest.find(')') else {
        return false;
    };
    let after = rest[close + 1..].trim_start();
    after.starts_with('{')
        || after.starts_with(":=")
        || after.starts_with("= ")
        || after.starts_with("if")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comprehension_local_that_shadows_an_outer_variable_is_renamed() {
        let src = "package main\nimport rego.v1\ndeny contains msg if {\n  name := input[_].a.name\n  names := [name | some i; input[i].a.name == name; name := input[i].b]\n  count(names) > 1\n  msg := name\n}\n";
        let out = rewrite(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(
            out.contains("names := [__ggc1_name | some i; input[i].a.name == name; __ggc1_name := input[i].b]"),
            "{out}"
        );
        assert!(
            out.contains("msg := name\n"),
            "the outer variable is untouched: {out}"
        );
        // `some i` in a comprehension under the rule's own `some i`: the comprehension's own.
        let some = "package main\nimport rego.v1\nusers contains u if {\n  some i\n  input[i].kind == \"team\"\n  known := {e | some i; input[i].kind == \"user\"; e := input[i].email}\n  u := input[i].owner\n  not known[u]\n}\n";
        let some_out = rewrite(some);
        assert!(
            some_out.contains(
                "{e | some __ggc1_i; input[__ggc1_i].kind == \"user\"; e := input[__ggc1_i].email}"
            ),
            "{some_out}"
        );
        assert!(some_out.contains("u := input[i].owner"), "{some_out}");
        let mut some_engine = regorus::Engine::new();
        some_engine
            .add_policy("s.rego".to_string(), some_out)
            .unwrap();
        some_engine.set_input(
            regorus::Value::from_json_str(
                r#"[{"kind": "team", "owner": "a@x"}, {"kind": "user", "email": "b@x"}]"#,
            )
            .unwrap(),
        );
        let v = some_engine
            .eval_rule("data.main.users".to_string())
            .unwrap();
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!(["a@x"])
        );
        // `some i` of a rule used only inside its comprehensions: each comprehension its own.
        let outer = "package main\nimport rego.v1\nmissing contains u if {\n  some i\n  users := {e | some i; input[i].kind == \"user\"; e := input[i].email}\n  owners := [o | input[i].kind == \"team\"; o := input[i].owner]\n  some u in owners\n  not users[u]\n}\n";
        let outer_out = rewrite(outer);
        assert!(
            outer_out.contains(
                "owners := [o | input[__ggs2_i].kind == \"team\"; o := input[__ggs2_i].owner]"
            ),
            "{outer_out}"
        );
        assert!(
            outer_out.contains("\n  true\n  users"),
            "the declaration goes: {outer_out}"
        );
        let mut outer_engine = regorus::Engine::new();
        outer_engine
            .add_policy("o.rego".to_string(), outer_out)
            .unwrap();
        outer_engine.set_input(regorus::Value::from_json_str(
            r#"[{"kind": "team", "owner": "a@x"}, {"kind": "user", "email": "b@x"}, {"kind": "team", "owner": "b@x"}]"#,
        ).unwrap());
        let v = outer_engine
            .eval_rule("data.main.missing".to_string())
            .unwrap();
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!(["a@x"])
        );
        // A set union in a rule body is no comprehension (the gatekeeper-library's
        // `all_keys := keys | {"name"}` then `{k: v | k := all_keys[_]; ...}`).
        let union = "package p\nf(obj) = out {\n  keys := {k | obj[k]}\n  all := keys | {\"name\"}\n  out := {k: v | k := all[_]; v := k}\n}\n";
        assert_eq!(rewrite(union), union);
        // A comprehension that only declares its own variable is left as it is.
        let plain = "package main\nx := [y | some i; y := input[i]]\n";
        assert_eq!(rewrite(plain), plain);
        // Regorus compiles the rewritten policy, and evaluates it as OPA: the local is the
        // comprehension's own.
        let mut engine = regorus::Engine::new();
        engine.add_policy("p.rego".to_string(), out).unwrap();
        engine.set_input(
            regorus::Value::from_json_str(
                r#"[{"a": {"name": "x"}, "b": "x"}, {"a": {"name": "x"}, "b": "y"}]"#,
            )
            .unwrap(),
        );
        let v = engine.eval_rule("data.main.deny".to_string()).unwrap();
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!(["x"]));
    }

    #[test]
    fn a_nested_comprehensions_own_declaration_is_not_the_outer_ones() {
        // raspbernetes/k8s-security-policies' CIS 5.1.2: each inner set binds its own `r`.
        let text = "package p\nverbs := { v |\n    a := { r | r := input.rules[i].apiGroups[_] }\n    count(a) > 0\n    b := { r | r := input.rules[i].resources[_] }\n    v := input.rules[i].verbs[_]\n}\n";
        assert_eq!(rewrite(text), text);
    }

    #[test]
    fn multi_body_rules_get_their_head() {
        let src = "package a\n\nviolation[{\"msg\": msg}] {\n  input.a\n  msg := \"a\"\n} {\n  input.b\n  msg := \"b\"\n}\n";
        let out = rewrite(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(
            out.contains("} violation[{\"msg\": msg}] {\n  input.b"),
            "{out}"
        );
    }

    #[test]
    fn object_values_in_heads_are_not_bodies() {
        let src = "package a\nf(c) = {\"p\": p} {\n  p := c\n}\n\nf(c) = {\"p\": p} {\n  p := 1\n} {\n  p := 2\n}\n";
        let out = rewrite(src);
        assert_eq!(out.matches("f(c) = {\"p\": p} {").count(), 3, "{out}");
        assert!(
            out.starts_with("package a\nf(c) = {\"p\": p} {\n  p := c\n}\n"),
            "{out}"
        );
    }

    #[test]
    fn else_chains_are_left_alone() {
        let src = "package a\nf(x) = 1 {\n  x > 1\n} else = 2 {\n  true\n}\n";
        assert_eq!(rewrite(src), src);
    }

    #[test]
    fn reference_newline_paren_is_split() {
        let src = "package a\nok(h) {\n    input.parameters.spread\n    (h.max - h.min) >= input.parameters.spread\n}\n";
        let out = rewrite(src);
        assert!(
            out.contains("input.parameters.spread;\n    (h.max"),
            "{out}"
        );
        // A continuation line is not touched.
        let src = "package a\nx := y {\n    y := count([1,\n    (2)])\n}\n";
        assert_eq!(rewrite(src), src);
    }

    #[test]
    fn not_call_arguments_are_bound_first() {
        let src =
            "package a\nv {\n  not f(rule, x, params.ranges)\n  not g(x) with input as {}\n}\n";
        let out = rewrite(src);
        assert!(
            out.contains("  __gg1 := params.ranges; not f(rule, x, __gg1)\n"),
            "{out}"
        );
        assert!(out.contains("  not g(x) with input as {}\n"), "{out}");
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn not_index_keys_are_bound_first() {
        let src = "package a\nv {\n  not allowed[input.x]\n  not labels[key]\n  not m[a.b][_]\n}\nw if not allowed[input.review.name] # why\n";
        let out = rewrite(src);
        assert!(
            out.contains("  __gg1 := input.x; not allowed[__gg1]\n"),
            "{out}"
        );
        assert!(out.contains("  not labels[key]\n"), "a variable key: {out}");
        assert!(
            out.contains("  not m[a.b][_]\n"),
            "more after the key: {out}"
        );
        assert!(
            out.contains("w if { __gg1001 := input.review.name; not allowed[__gg1001] } # why\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn not_index_in_one_line_bodies_binds_the_key_first() {
        let src = "package a\ndeny if { not allowed[input.x] }\nd2 { x := 1; not f(input.y) }\n";
        let out = rewrite(src);
        assert!(
            out.contains("deny if { __gg1 := input.x; not allowed[__gg1] }"),
            "{out}"
        );
        assert!(
            out.contains("x := 1; __gg2 := input.y; not f(__gg2) }"),
            "{out}"
        );
    }

    #[test]
    fn with_a_bare_rule_name_is_written_by_path() {
        let src = "package a.b\nf := 1\ng(x) := x\ntest_x if { f == 2 with f as 2; g(1) with g as h; x with input as 1 }\n";
        let out = rewrite(src);
        assert!(out.contains("f == 2 with data.a.b.f as 2"), "{out}");
        assert!(out.contains("with g as h"), "functions stay: {out}");
        assert!(out.contains("with input as 1"), "{out}");
    }

    #[test]
    fn else_chain_values_are_bound_in_the_body() {
        let src = "package a\nf(x) := m[k] if { k := x.k } else := 0\ng(x) = m[k] {\n  k := x.k # why\n} else = 1\nh := 1 if { true } else := 2\n";
        let out = rewrite(src);
        assert!(
            out.contains("f(x) := __ggv1 if { k := x.k ; __ggv1 := m[k] } else := 0"),
            "{out}"
        );
        assert!(
            out.contains("g(x) = __ggv2 {\n  k := x.k # why\n__ggv2 := m[k] } else = 1"),
            "{out}"
        );
        assert!(out.contains("h := 1 if { true } else := 2"), "{out}");
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn with_a_rule_of_another_file_of_the_package() {
        let policy = "package a\nallowed := {1}\nf(x) := x\n";
        let test = "package a\ntest_x if { deny with allowed as {2} with f as g }\n";
        let names = package_names([policy, test]);
        let out = rewrite_in(test, names.get("a"));
        assert!(
            out.contains("with data.a.allowed as {2} with f as g"),
            "{out}"
        );
    }

    #[test]
    fn rego_metadata_is_the_literal_block() {
        let src = "# METADATA\n# title: P\npackage p\n\n# METADATA\n# title: R\n# custom:\n#   severity: high\nr := m if {\n  m := rego.metadata.rule()\n}\nc := rego.metadata.chain()\nnone := rego.metadata.rule()\n";
        let out = rewrite(src);
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(
            out.contains(r#"m := {"title":"R","custom":{"severity":"high"},"scope":"rule"}"#),
            "{out}"
        );
        assert!(
            out.contains(r#"c := [{"path":["data","p","c"]},{"path":["data","p"],"annotations":{"title":"P","scope":"package"}}]"#),
            "{out}"
        );
        assert!(out.contains("none := {}"), "{out}");
    }

    #[test]
    fn deprecated_builtins_are_called_by_their_current_names() {
        let src =
            "package a\nv { re_match(\"^a\", input.x) }\nw := set_diff({1}, {2}) # re_match(\n";
        let out = rewrite(src);
        assert!(out.contains("v { regex.match(\"^a\", input.x) }"), "{out}");
        assert!(out.contains("w := minus({1}, {2}) # re_match(\n"), "{out}");
        let own = "package a\nre_match(a, b) := true\nv { re_match(1, 2) }\n";
        assert_eq!(rewrite(own), own, "a policy's own function keeps its name");
    }

    #[test]
    fn sprintf_missing_arguments_print_as_go() {
        let src = "package a\nm := sprintf(\"%v and %d, 100%% %v\", [1,\n  [2, 3]])\n";
        let out = rewrite(src);
        assert!(
            out.contains("sprintf(\"%v and %d, 100%% %%!v(MISSING)\", [1,"),
            "{out}"
        );
        let ok = "package a\nm := sprintf(\"%v\", [x])\n";
        assert_eq!(rewrite(ok), ok);
    }

    #[test]
    fn imports_are_not_rewritten_inside_strings_or_comments() {
        let src = "package a\nimport data.x.res\nm := `set res.limits`\nn := \"res.x\" # res.y\no := res.z\n";
        let out = rewrite(src);
        assert!(
            out.contains("m := `set res.limits`\nn := \"res.x\" # res.y\no := data.x.res.z\n"),
            "{out}"
        );
    }

    #[test]
    fn imported_functions_are_called_by_path() {
        let src = "package a\nimport data.lib.u.is_update\nimport data.lib.v as v\nviolation[1] {\n  not is_update(input.review)\n  v.x\n}\n";
        let out = rewrite(src);
        assert!(
            out.contains("__gg1 := input.review; not data.lib.u.is_update(__gg1)"),
            "{out}"
        );
        assert!(out.contains("import data.lib.u.is_update\n"), "{out}");
        assert!(
            out.contains("  data.lib.v.x\n"),
            "package aliases are written out: {out}"
        );
    }

    #[test]
    fn some_declarations_move_to_the_start_of_their_query() {
        let src = "package a\nf(cmds) := [n |\n\tparts := cmds[n]\n\tsome i, j # local\n\tparts[i] == parts[j]\n]\nr contains x if {\n  # first\n  x := input.a[_]\n  some k\n  x[k]\n}\ns if {\n  some q\n  q := 1\n}\n";
        let out = rewrite(src);
        assert!(
            out.contains("[n |\n\tsome i, j; parts := cmds[n]\n\n\tparts[i]"),
            "{out}"
        );
        assert!(
            out.contains("  # first\n  some k; x := input.a[_]\n\n  x[k]"),
            "{out}"
        );
        assert!(
            out.contains("s if {\n  some q\n  q := 1"),
            "already first: {out}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn with_values_that_call_functions_are_bound_first() {
        let src = "package a\ntest_x if {\n  r := deny with input as build({\n    \"t\": f(1),\n  }) with data.x as 1\n  count(r) == 1\n}\ntest_y if { not deny with input as {\"a\": 1} }\ntest_z if { deny with input as g(2); true }\n";
        let out = rewrite(src);
        assert!(
            out.contains("  __ggw1 := build({\n    \"t\": f(1),\n  }); r := deny with input as __ggw1 with data.x as 1\n"),
            "{out}"
        );
        assert!(
            out.contains("not deny with input as {\"a\": 1}"),
            "no call: {out}"
        );
        assert!(
            out.contains("test_z if { __ggw2 := g(2); deny with input as __ggw2; true }"),
            "{out}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn imports_after_rules_join_the_head() {
        let src = "package a\nimport rego.v1\n\nx := 1\n\nimport data.lib.b # the lib\nimport data.lib.c\ny := b.z\n";
        let out = rewrite(src);
        assert!(
            out.starts_with("package a\nimport rego.v1 import data.lib.b import data.lib.c\n\nx := 1\n\n\n\ny := b.z\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
        let head_only = "package a\nimport data.x\n";
        assert_eq!(rewrite(head_only), head_only);
    }

    #[test]
    fn a_variable_unified_with_the_reference_it_indexes() {
        let src =
            "package a\napi[c] {\n  c = containers[c]\n  d = m[k] # k is bound\n  e = m[e].x\n}\n";
        let out = rewrite(src);
        assert!(out.contains("  containers[c] == c\n"), "{out}");
        assert!(out.contains("  d = m[k] # k is bound\n"), "{out}");
        assert!(out.contains("  m[e].x == e\n"), "{out}");
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn host_built_ins_call_their_stand_ins() {
        let stand_in = "package host.report\nmake(msg, at) := {\"msg\": msg, \"at\": at}\n";
        let policy = "package p\nimport data.lib.x as report\ndeny[r] {\n  r := json.unmarshal(host.report.make(\"m\", input))\n}\nq := report.make(1, 2)\ns := \"host.report.make(1)\" # host.report.make(\nt := count([1])\n";
        let test = "package p\ntest_d { deny with host.report.make as mock }\n";
        let names = package_names([stand_in, policy, test]);
        let out = rewrite_with(policy, names.get("p"), Some(&names));
        assert!(
            out.contains("r := json.unmarshal(data.host.report.make(\"m\", input))"),
            "{out}"
        );
        assert!(
            out.contains("q := data.lib.x.make(1, 2)"),
            "an alias: {out}"
        );
        assert!(
            out.contains("s := \"host.report.make(1)\" # host.report.make(\n"),
            "{out}"
        );
        assert!(out.contains("t := count([1])"), "a built-in: {out}");
        let out = rewrite_with(test, names.get("p"), Some(&names));
        assert!(out.contains("with data.host.report.make as mock"), "{out}");
        let bare_host = "package host\nmanaged(x) := true\n";
        let bare = "package q\nd { managed(input) }\ne { f(1) with managed as g }\n";
        let mine = "package r\nmanaged(x) := false\nd { managed(input) }\n";
        let names = package_names([bare_host, bare, mine]);
        let out = rewrite_with(bare, names.get("q"), Some(&names));
        assert!(out.contains("d { data.host.managed(input) }"), "{out}");
        assert!(out.contains("with data.host.managed as g"), "{out}");
        let out = rewrite_with(mine, names.get("r"), Some(&names));
        assert_eq!(out, mine, "a package's own function");
        let without = package_names([policy]);
        assert!(
            rewrite_with(policy, None, Some(&without))
                .contains("r := json.unmarshal(host.report.make("),
            "no stand-in, no rewrite"
        );
        // Text of several bytes per character just before a name: no panic.
        let accented = "package q\n# Überprüfung → managed(x)\nd { ééé managed(input) }\n";
        let names = package_names([bare_host, accented]);
        let out = rewrite_with(accented, names.get("q"), Some(&names));
        assert!(out.contains("# Überprüfung → managed(x)\n"), "{out}");
    }

    #[test]
    fn strings_and_comments_do_not_confuse_the_lexer() {
        let src = "package a\n# } {\nx := \"} {\" {\n  true\n}\n";
        assert_eq!(rewrite(src), src);
    }
}
