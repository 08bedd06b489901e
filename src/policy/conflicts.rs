//! Rules whose value could conflict, which regorus's compiled VM does not report.
//!
//! OPA (and regorus's interpreter) fail an evaluation when a complete rule or a function
//! produces two different values ("complete rules must not produce multiple outputs"), or a
//! partial object two values for one key. The VM keeps the last value instead, so a decision
//! would depend on the order of the containers, where OPA's is an error (fail closed). A
//! program with such a rule stays on the interpreter ([`first`], read by
//! `rego::vm_decides_differently`).
//!
//! Whether a rule really conflicts is only known when it runs; this finds the rules that could,
//! conservatively, from the syntax:
//! - a complete rule or a partial object defined more than once in a package (in any of its
//!   modules), a function defined more than once unless one argument is a different constant
//!   in each definition (`message(e, "")`, `message(e, "latest")`);
//! - a complete rule, partial object or function whose body (or value) iterates: `some`, or a
//!   reference indexed by a variable nothing bound before (`xs[_]`, `xs[i]`). Comprehensions
//!   and `every` are one value whatever they iterate; `not` binds nothing.

use std::collections::{HashMap, HashSet};

use regorus::unstable::{AssignOp, Expr, Literal, Module, Query, Ref, Rule, RuleHead};

/// The first rule of `modules` that could produce conflicting values, as `file:line: why`.
pub fn first(modules: &[Ref<Module>]) -> Option<String> {
    // What a body may name without binding it: every rule and function of the package,
    // and the names imports bring in.
    let mut rules_of: HashMap<String, HashSet<String>> = HashMap::new();
    for module in modules {
        let names = rules_of.entry(package(module)).or_default();
        for rule in &module.policy {
            names.insert(super::load::head_root(rule).to_string());
        }
        for import in &module.imports {
            let alias = match &import.r#as {
                Some(span) => span.text().to_string(),
                None => last_segment(import.refr.span().text()).to_string(),
            };
            names.insert(alias);
        }
    }
    let mut definitions: HashMap<(String, String), Vec<&Rule>> = HashMap::new();
    for module in modules {
        let package = package(module);
        let known = &rules_of[&package];
        for rule in &module.policy {
            let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
                continue;
            };
            let (name, args, value) = match head {
                RuleHead::Compr {
                    refr,
                    assign: Some(assign),
                    ..
                } => (refr.span().text().to_string(), &[][..], Some(&assign.value)),
                RuleHead::Func {
                    refr,
                    args,
                    assign: Some(assign),
                    ..
                } => (
                    refr.span().text().to_string(),
                    &args[..],
                    Some(&assign.value),
                ),
                // `x if ...` and `f(x) if ...` are true however often they hold; a partial
                // set is many values.
                _ => continue,
            };
            // `m[k] := 1` and `m[j] := 2` define one partial object.
            let name = name.split('[').next().unwrap_or(&name).to_string();
            let mut bound: HashSet<String> = known.clone();
            for arg in args {
                vars(arg, &mut bound);
            }
            let iterates = bodies.iter().any(|b| {
                let mut bound = bound.clone();
                query_iterates(&b.query, &mut bound)
                    || value.is_some_and(|v| iterates(v, &bound))
                    || b.assign
                        .as_ref()
                        .is_some_and(|a| iterates(&a.value, &bound))
            });
            if iterates {
                let span = rule_span(rule);
                return Some(format!(
                    "{}:{}: {name} iterates in its body, and two values conflict in OPA, not in regorus's VM",
                    span.0, span.1
                ));
            }
            definitions
                .entry((package.clone(), name))
                .or_default()
                .push(rule.as_ref());
        }
    }
    let mut several: Vec<_> = definitions
        .into_iter()
        .filter(|(_, rules)| rules.len() > 1 && !disjoint(rules))
        .collect();
    several.sort_by_key(|((p, n), _)| (p.clone(), n.clone()));
    several.first().map(|((_, name), rules)| {
        let span = rule_span(rules[1]);
        format!(
            "{}:{}: {name} has several definitions, whose conflicts regorus's VM does not report",
            span.0, span.1
        )
    })
}

fn package(module: &Module) -> String {
    module.package.refr.span().text().to_string()
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn rule_span(rule: &Rule) -> (String, u32) {
    let span = match rule {
        Rule::Spec { span, .. } | Rule::Default { span, .. } => span,
    };
    (span.source.file().to_string(), span.line)
}

/// Definitions of one function that a constant argument keeps apart: at some position every
/// definition has a constant, each a different one.
fn disjoint(rules: &[&Rule]) -> bool {
    let args: Vec<&[Ref<Expr>]> = rules
        .iter()
        .filter_map(|r| match r {
            Rule::Spec {
                head: RuleHead::Func { args, .. },
                ..
            } => Some(&args[..]),
            _ => None,
        })
        .collect();
    if args.len() != rules.len() {
        return false;
    }
    let arity = args[0].len();
    (0..arity).any(|i| {
        let mut seen = HashSet::new();
        args.iter().all(|a| {
            a.get(i)
                .and_then(|e| constant(e))
                .is_some_and(|c| seen.insert(c))
        })
    })
}

/// A scalar constant's text (`"latest"`, `0`, `true`, `null`).
fn constant(expr: &Expr) -> Option<String> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => Some(value.to_string()),
        _ => None,
    }
}

/// Adds the variables `expr` names (an argument's, an assignment's left side).
fn vars(expr: &Expr, out: &mut HashSet<String>) {
    match expr {
        Expr::Var { value, .. } => {
            if let Ok(name) = value.as_string() {
                out.insert(name.to_string());
            }
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| vars(i, out))
        }
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, k, v)| {
            vars(k, out);
            vars(v, out);
        }),
        _ => {}
    }
}

/// Whether a query's statements iterate, binding as they go.
fn query_iterates(query: &Query, bound: &mut HashSet<String>) -> bool {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } | Literal::SomeIn { .. } => return true,
            // One value whatever they iterate, and they bind nothing outside.
            Literal::Every { .. } | Literal::NotExpr { .. } => {}
            Literal::Expr { expr, .. } => match expr.as_ref() {
                Expr::AssignExpr { op, lhs, rhs, .. } => {
                    if iterates(rhs, bound) {
                        return true;
                    }
                    if matches!(op, AssignOp::Eq) && iterates(lhs, bound) {
                        return true;
                    }
                    vars(lhs, bound);
                    if matches!(op, AssignOp::Eq) {
                        vars(rhs, bound);
                    }
                }
                other => {
                    if iterates(other, bound) {
                        return true;
                    }
                }
            },
        }
    }
    false
}

/// Whether evaluating `expr` may iterate: a reference indexed by a variable not yet bound.
fn iterates(expr: &Expr, bound: &HashSet<String>) -> bool {
    match expr {
        Expr::RefBrack { refr, index, .. } => {
            if let Expr::Var { value, .. } = index.as_ref()
                && value.as_string().is_ok_and(|n| !bound.contains(n.as_ref()))
            {
                return true;
            }
            iterates(refr, bound) || iterates(index, bound)
        }
        Expr::RefDot { refr, .. } => iterates(refr, bound),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().any(|i| iterates(i, bound))
        }
        Expr::Object { fields, .. } => fields
            .iter()
            .any(|(_, k, v)| iterates(k, bound) || iterates(v, bound)),
        Expr::Call { params, .. } => params.iter().any(|p| iterates(p, bound)),
        Expr::UnaryExpr { expr, .. } => iterates(expr, bound),
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => iterates(lhs, bound) || iterates(rhs, bound),
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            key.as_ref().is_some_and(|k| iterates(k, bound))
                || iterates(value, bound)
                || iterates(collection, bound)
        }
        // A comprehension is one value.
        _ => false,
    }
}
