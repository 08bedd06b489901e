//! Checks regorus leaves to run time, done at load time instead: every function a policy calls
//! exists (a built-in, a function of the program, reached directly or through an import) and
//! is called with a number of arguments it takes.
//!
//! Why: regorus resolves a call only when the evaluation reaches it, so a policy calling an
//! undefined function loads, passes every object the rule does not reach, and fails every
//! object it does, at admission an outage for that kind. OPA's compiler refuses such a
//! policy; so does gitgate, naming file, line and column. Unsafe variables and rule conflicts
//! are already refused by regorus's analysis at load time ([`super::rego::Program::compile`]).

use std::collections::{HashMap, HashSet};

use regorus::unstable::{
    BUILTINS, Expr, Literal, LiteralStmt, Module, Query, Ref, Rule, RuleHead, Span,
};

/// One problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// Checks every call of every module of one program.
pub fn check(modules: &[Ref<Module>]) -> Vec<Problem> {
    let mut functions: HashMap<String, usize> = HashMap::new();
    let mut defaults: HashSet<String> = HashSet::new();
    for module in modules {
        let Some(package) = path_of(&module.package.refr) else {
            continue;
        };
        let package = format!("data.{package}");
        for rule in &module.policy {
            match rule.as_ref() {
                Rule::Spec {
                    head: RuleHead::Func { refr, args, .. },
                    ..
                } => {
                    if let Some(name) = path_of(refr) {
                        functions.insert(format!("{package}.{name}"), args.len());
                    }
                }
                Rule::Default { refr, .. } => {
                    if let Some(name) = path_of(refr) {
                        defaults.insert(format!("{package}.{name}"));
                    }
                }
                _ => {}
            }
        }
    }
    let mut problems = Vec::new();
    let mut calls = Vec::new();
    for module in modules {
        let Some(package) = path_of(&module.package.refr) else {
            continue;
        };
        let imports: HashMap<String, String> = module
            .imports
            .iter()
            .filter_map(|i| {
                let target = path_of(&i.refr)?;
                let alias = match &i.r#as {
                    Some(span) => span.text().to_string(),
                    None => target.rsplit('.').next()?.to_string(),
                };
                Some((alias, target))
            })
            .collect();
        let mut walker = Walker {
            package: format!("data.{package}"),
            imports: &imports,
            functions: &functions,
            defaults: &defaults,
            problems: &mut problems,
            current: None,
            calls: &mut calls,
        };
        for rule in &module.policy {
            walker.rule(rule);
        }
    }
    problems.extend(recursion(&calls));
    problems
}

/// A call of one of the program's functions from the body of another: (caller, callee, where).
struct Call {
    caller: String,
    callee: String,
    at: Problem,
}

/// Recursive functions, refused as OPA refuses them: regorus evaluates a function that calls
/// itself (directly or through others) by recursing on the thread's stack, with no limit, so
/// an argument taken from the input (`f(input.spec.replicas)`) overflows the stack and aborts
/// the process, which a caught panic cannot stop: the webhook would go down with the request.
/// One problem per function on a cycle, at its call that closes the cycle.
fn recursion(calls: &[Call]) -> Vec<Problem> {
    let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
    for c in calls {
        graph.entry(&c.caller).or_default().push(&c.callee);
    }
    // Whether `to` is reachable from `from` (in one step or more).
    let reaches = |from: &str, to: &str| {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![from];
        while let Some(f) = stack.pop() {
            if f == to {
                return true;
            }
            if seen.insert(f) {
                stack.extend(graph.get(f).into_iter().flatten().copied());
            }
        }
        false
    };
    let mut reported: HashSet<&str> = HashSet::new();
    let mut problems = Vec::new();
    for c in calls {
        if !reported.contains(c.caller.as_str()) && reaches(&c.callee, &c.caller) {
            reported.insert(&c.caller);
            let what = if c.callee == c.caller {
                format!("function {} calls itself", c.caller)
            } else {
                format!(
                    "function {} is recursive: it calls {}, which calls back to it",
                    c.caller, c.callee
                )
            };
            problems.push(Problem {
                message: format!(
                    "{what}; Rego does not allow recursion (as OPA, gitgate refuses it)"
                ),
                ..c.at.clone()
            });
        }
    }
    problems
}

/// The namespaces of OPA's built-ins: a call under one of them that regorus lacks
/// (`http.send`, `io.jwt.decode`, `yaml.unmarshal`) is most likely meant for OPA, not a typo.
const OPA_NAMESPACES: &[&str] = &[
    "array",
    "base64",
    "base64url",
    "bits",
    "crypto",
    "glob",
    "graph",
    "graphql",
    "hex",
    "http",
    "io",
    "json",
    "net",
    "numbers",
    "object",
    "opa",
    "providers",
    "regex",
    "rego",
    "semver",
    "strings",
    "time",
    "units",
    "urlquery",
    "uuid",
    "yaml",
];

struct Walker<'a> {
    package: String,
    imports: &'a HashMap<String, String>,
    functions: &'a HashMap<String, usize>,
    defaults: &'a HashSet<String>,
    problems: &'a mut Vec<Problem>,
    /// The function whose definition is being walked.
    current: Option<String>,
    calls: &'a mut Vec<Call>,
}

impl Walker<'_> {
    fn rule(&mut self, rule: &Rule) {
        self.current = match rule {
            Rule::Spec {
                head: RuleHead::Func { refr, .. },
                ..
            } => path_of(refr).map(|name| format!("{}.{name}", self.package)),
            _ => None,
        };
        match rule {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { refr, assign, .. } => {
                        self.expr(refr);
                        if let Some(a) = assign {
                            self.expr(&a.value);
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        self.expr(refr);
                        if let Some(k) = key {
                            self.expr(k);
                        }
                    }
                    RuleHead::Func { assign, .. } => {
                        if let Some(a) = assign {
                            self.expr(&a.value);
                        }
                    }
                }
                for body in bodies {
                    if let Some(a) = &body.assign {
                        self.expr(&a.value);
                    }
                    self.query(&body.query);
                }
            }
            Rule::Default { value, .. } => self.expr(value),
        }
    }

    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &LiteralStmt) {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
            Literal::Every { domain, query, .. } => {
                self.expr(domain);
                self.query(query);
            }
        }
        // `with f as g`: `f` is replaced, so it is not called here; `g` may be a function.
        for w in &stmt.with_mods {
            self.expr(&w.r#as);
        }
    }

    fn expr(&mut self, expr: &Ref<Expr>) {
        // An explicit stack: a long chain of references must not overflow ours.
        let mut stack: Vec<&Ref<Expr>> = vec![expr];
        while let Some(e) = stack.pop() {
            match e.as_ref() {
                Expr::String { .. }
                | Expr::RawString { .. }
                | Expr::Number { .. }
                | Expr::Bool { .. }
                | Expr::Null { .. }
                | Expr::Var { .. } => {}
                Expr::Array { items, .. } | Expr::Set { items, .. } => stack.extend(items),
                Expr::Object { fields, .. } => {
                    for (_, k, v) in fields {
                        stack.push(k);
                        stack.push(v);
                    }
                }
                Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                    stack.push(term);
                    self.query(query);
                }
                Expr::ObjectCompr {
                    key, value, query, ..
                } => {
                    stack.push(key);
                    stack.push(value);
                    self.query(query);
                }
                Expr::Call { fcn, params, .. } => {
                    // The function's name is where the reader looks, not the call's `(`.
                    self.call(root(fcn).span(), fcn, params.len());
                    stack.extend(params);
                }
                Expr::UnaryExpr { expr, .. } => stack.push(expr),
                Expr::RefDot { refr, .. } => stack.push(refr),
                Expr::RefBrack { refr, index, .. } => {
                    stack.push(refr);
                    stack.push(index);
                }
                Expr::BinExpr { lhs, rhs, .. }
                | Expr::BoolExpr { lhs, rhs, .. }
                | Expr::ArithExpr { lhs, rhs, .. }
                | Expr::AssignExpr { lhs, rhs, .. } => {
                    stack.push(lhs);
                    stack.push(rhs);
                }
                Expr::Membership {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    if let Some(k) = key {
                        stack.push(k);
                    }
                    stack.push(value);
                    stack.push(collection);
                }
            }
        }
    }

    /// Resolves a call as regorus does (import alias, then the program's functions relative
    /// to the package or absolute, default functions, `print`, built-ins) and checks its arity.
    /// A function takes its arguments, or one more: the output argument (`count(x, n)`).
    fn call(&mut self, span: &Span, fcn: &Ref<Expr>, given: usize) {
        let Some(path) = path_of(fcn) else {
            return; // regorus reports an invalid function expression itself
        };
        let path = match path.split_once('.') {
            Some((head, rest)) if head != "data" => match self.imports.get(head) {
                Some(target) => format!("{target}.{rest}"),
                None => path,
            },
            _ => match self.imports.get(&path) {
                Some(target) => target.clone(),
                None => path,
            },
        };
        let full = if path.starts_with("data.") {
            path.clone()
        } else {
            format!("{}.{path}", self.package)
        };
        let arity = if let Some(n) = self.functions.get(&full) {
            if let Some(caller) = &self.current {
                self.calls.push(Call {
                    caller: caller.clone(),
                    callee: full.clone(),
                    at: Problem {
                        file: span.source.file().to_string(),
                        line: span.line,
                        col: span.col,
                        message: String::new(),
                    },
                });
            }
            Some(*n)
        } else if self.defaults.contains(&full) || path == "print" {
            None
        } else if let Some((_, n)) = BUILTINS.get(path.as_str()) {
            Some(usize::from(*n))
        } else if let Some((_, n)) = super::host::FUNCTIONS.iter().find(|(f, _)| *f == path) {
            Some(usize::from(*n))
        } else {
            let namespace = path.split('.').next().unwrap_or_default();
            let message = if OPA_NAMESPACES.contains(&namespace) {
                format!(
                    "undefined function {path}: not a built-in gitgate's Rego engine (regorus) has, nor a function of these policies"
                )
            } else {
                format!("undefined function {path}")
            };
            self.problem(span, message);
            return;
        };
        if let Some(n) = arity
            && (given < n || given > n + 1)
        {
            let takes = if n == 1 {
                "1 argument".to_string()
            } else {
                format!("{n} arguments")
            };
            self.problem(
                span,
                format!(
                    "{path} takes {takes} (and an optional output), but is called with {given}"
                ),
            );
        }
    }

    fn problem(&mut self, span: &Span, message: String) {
        self.problems.push(Problem {
            file: span.source.file().to_string(),
            line: span.line,
            col: span.col,
            message,
        });
    }
}

/// The variable a reference starts from (`nosuch` of `nosuch.fn`), whose span starts where
/// the name does.
fn root(mut expr: &Ref<Expr>) -> &Ref<Expr> {
    while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = expr.as_ref() {
        expr = refr;
    }
    expr
}

/// `a.b.c` of a reference made of a variable and dotted (or string-indexed) fields.
fn path_of(expr: &Ref<Expr>) -> Option<String> {
    match expr.as_ref() {
        Expr::Var { span, .. } => Some(span.text().to_string()),
        Expr::RefDot { refr, field, .. } => Some(format!("{}.{}", path_of(refr)?, field.0.text())),
        Expr::RefBrack { refr, index, .. } => match index.as_ref() {
            Expr::String { value, .. } => {
                Some(format!("{}.{}", path_of(refr)?, value.as_string().ok()?))
            }
            _ => None,
        },
        _ => None,
    }
}
