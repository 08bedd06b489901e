//! `gitgate audit`: the third door. What is already in the cluster, judged as the webhook
//! would judge a CREATE of it now: every object of the audited kinds is listed (paged, one
//! page held at a time), turned into an input document (`input.source.context: audit`),
//! given the provenance verdict the approved window gives it, and decided with
//! [`decision::decide`], the function `check` and `serve` call. The result is a
//! [`check::Report`](crate::decision::findings::Report), so every `check` format and the exit-code
//! contract apply: policy violations per object (the built-in `provenance` policy reports
//! `untraceable` and `modified` objects, with the differing paths), and objects the newest
//! approved commit holds that the cluster lacks (`missing-in-cluster`).
//!
//! What an audit cannot know: who made an object. An object a controller owns
//! (`ownerReferences` with `controller: true`, a ReplicaSet's Pods) is `exempt` from
//! provenance here, its owner being audited in its place; the webhook only exempts such an
//! object when an allowed controller asks. Policies still judge it.
//!
//! Which kinds: `audit.kinds`, or by default the synced kinds, the kinds the newest approved
//! commit holds, and the kinds the policies name (at the version the API server prefers).
//! Which namespaces: all but `audit.excludedNamespaces` (the system namespaces, which the
//! webhook is not sent either) and a Gatekeeper `Config`'s exclusions for `audit`.

mod standalone;

pub use standalone::{AuditError, audit, read_view};

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kube_core::admission::Operation;
use serde_json::Value;

use crate::cluster::sync::{Needs, describe_kind};
use crate::cluster::{ClusterError, Connection, Resolved, View, pick};
use crate::config::{Config, KindRef};
use crate::decision::findings::At;
use crate::decision::findings::{Audited, Checked, Item, Level, Report};
use crate::decision::{self, Context as Decide, guard};
use crate::input::{Document, Identity, Source};
use crate::policy::{Enforcement, PolicySet};
use crate::provenance::index::{self, Index, Key};
use crate::provenance::verdict::{self, Status, Verdict};

/// What an audit reads, borrowed from its caller.
pub struct Context<'a> {
    pub connection: &'a Connection,
    /// The runtime the client's requests run on (the audit itself runs on the caller's
    /// thread, off the runtime's workers, so that it never holds up admission).
    pub runtime: &'a tokio::runtime::Handle,
    pub policies: &'a PolicySet,
    pub config: &'a Config,
    /// The approved window, when provenance is on.
    pub index: Option<&'a Index>,
    /// Namespace labels and `data.inventory`.
    pub view: &'a View,
    /// Threads deciding objects (1 in `serve`, beside admission).
    pub threads: usize,
    /// Keep each object's reference and findings ([`Outcome::subjects`], for PolicyReports).
    pub keep_subjects: bool,
}

/// An object audited and what was found on it (kept when [`Context::keep_subjects`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub findings: Vec<Item>,
}

/// An audit's result: the report, and the counts its gauges show.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub report: Report,
    /// Findings by (policy, action).
    pub violations: BTreeMap<(String, &'static str), usize>,
    pub duration: Duration,
    /// Every object audited with its findings, when asked for.
    pub subjects: Vec<Subject>,
}

/// The policy name of objects the newest approved commit holds and the cluster lacks.
pub const MISSING: &str = "missing-in-cluster";

/// What an audit lists: the kinds resolved with discovery, the kinds the cluster does not
/// serve (it holds none of their objects), and items about kinds that could not be resolved
/// (a kind not served is a note; other failures could not be checked).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub kinds: Vec<Resolved>,
    pub absent: Vec<KindRef>,
    pub items: Vec<Item>,
    /// Namespaces whose objects are not audited (globs).
    pub excluded_namespaces: Vec<String>,
}

/// The kinds to audit: `audit.kinds`, or the synced kinds, the kinds of the newest approved
/// commit and the kinds the policies name.
pub fn plan(ctx: &Context<'_>, needs: &Needs) -> Plan {
    let explicit = !ctx.config.audit.kinds.is_empty();
    // (kind, whether a note is due when it is not served)
    let mut wanted: Vec<(KindRef, bool)> = Vec::new();
    let add = |k: KindRef, noted: bool, wanted: &mut Vec<(KindRef, bool)>| {
        if !wanted
            .iter()
            .any(|(w, _)| w.group == k.group && w.kind == k.kind)
        {
            wanted.push((k, noted));
        }
    };
    if explicit {
        for k in &ctx.config.audit.kinds {
            add(k.clone(), true, &mut wanted);
        }
    } else {
        for s in &needs.sync {
            add(s.kind.clone(), true, &mut wanted);
        }
        for (_, version) in ctx.index.iter().flat_map(|i| i.newest_objects()) {
            if let Some(id) = Identity::of_object(&version.manifest()) {
                add(
                    KindRef {
                        group: id.group,
                        version: id.version,
                        kind: id.kind,
                        resource: None,
                    },
                    true,
                    &mut wanted,
                );
            }
        }
        let mut named: Vec<(String, String)> = ctx
            .policies
            .policies()
            .iter()
            .filter_map(|p| p.matcher.kind_keys())
            .flatten()
            .collect();
        named.sort();
        named.dedup();
        let mut preferred: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (group, kind) in named {
            let version = match preferred.get(&group) {
                Some(v) => v.clone(),
                None => {
                    let v = ctx
                        .runtime
                        .block_on(ctx.connection.preferred_version(&group))
                        .ok()
                        .flatten();
                    preferred.insert(group.clone(), v.clone());
                    v
                }
            };
            // A group the cluster does not serve is no kind to audit (a policy may name
            // `extensions` for old clusters).
            if let Some(version) = version {
                let k = KindRef {
                    group,
                    version,
                    kind,
                    resource: None,
                };
                add(k, false, &mut wanted);
            }
        }
    }
    // A policy that matches every kind (no `kinds` in its match) audits every kind the cluster
    // serves, as Gatekeeper's audit does (but Events and Leases, never judged). The built-in
    // `provenance` policy is not one: the kinds of the newest approved commit are its.
    let every_kind = !explicit
        && ctx
            .policies
            .policies()
            .iter()
            .any(|p| p.name != "provenance" && p.matcher.kind_keys().is_none());
    let mut all_served = Vec::new();
    if every_kind {
        match ctx.runtime.block_on(ctx.connection.served_groups()) {
            Ok(groups) => {
                for (group, version) in groups {
                    if let Ok(kinds) = ctx
                        .runtime
                        .block_on(ctx.connection.discover(&group, &version))
                    {
                        all_served.extend(kinds.into_iter().filter(|r| {
                            !(r.group == "coordination.k8s.io" && r.kind == "Lease")
                                && !((r.group.is_empty() || r.group == "events.k8s.io")
                                    && r.kind == "Event")
                        }));
                    }
                }
            }
            Err(e) => {
                return Plan {
                    items: vec![Item {
                        path: String::new(),
                        line: 0,
                        level: Level::Error,
                        policy: "gitgate".into(),
                        message: format!(
                            "a policy matches every kind, and the kinds the cluster serves cannot be read: {e}"
                        ),
                        operation: None,
                        object: None,
                        unchecked: true,
                    }],
                    excluded_namespaces: needs.audit_excluded_namespaces.clone(),
                    ..Plan::default()
                };
            }
        }
    }
    for r in &all_served {
        add(r.kind_ref(), false, &mut wanted);
    }
    // Discovery once per group version.
    let mut served: BTreeMap<(String, String), Discovered> = BTreeMap::new();
    let mut plan = Plan {
        excluded_namespaces: needs.audit_excluded_namespaces.clone(),
        ..Plan::default()
    };
    let failure = |e: ClusterError| match e {
        ClusterError::NotServed { why, .. } => (true, format!("not served: {why}")),
        other => (false, other.to_string()),
    };
    for (k, noted) in wanted {
        let gv = (k.group.clone(), k.version.clone());
        let list = served.entry(gv).or_insert_with(|| {
            ctx.runtime
                .block_on(ctx.connection.discover(&k.group, &k.version))
                .map_err(failure)
        });
        let found = match list {
            Ok(list) => pick(list, &k).map_err(failure),
            Err(e) => Err(e.clone()),
        };
        match found {
            Ok(r) => plan.kinds.push(r),
            Err((true, why)) => {
                if noted {
                    plan.items.push(kind_item(
                        &k,
                        Level::Note,
                        false,
                        format!("{why}; not audited"),
                    ));
                }
                plan.absent.push(k);
            }
            Err((false, why)) => plan.items.push(kind_item(&k, Level::Error, true, why)),
        }
    }
    // An audit of nothing must not read as passed.
    if plan.kinds.is_empty() && !plan.items.iter().any(|i| i.unchecked) {
        plan.items.push(Item {
            path: String::new(),
            line: 0,
            level: Level::Error,
            policy: "gitgate".into(),
            message: "nothing to audit: no kind is synced, held by the newest approved commit, named by a policy or served for a policy that matches every kind (set audit.kinds)".into(),
            operation: None,
            object: None,
            unchecked: true,
        });
    }
    plan
}

/// What discovery said of a group version: its kinds, or (whether it is not served, why).
type Discovered = Result<Vec<Resolved>, (bool, String)>;

fn kind_item(kind: &KindRef, level: Level, unchecked: bool, message: String) -> Item {
    Item {
        path: String::new(),
        line: 0,
        level,
        policy: "gitgate".into(),
        message: format!("{}: {message}", describe_kind(kind)),
        operation: None,
        object: None,
        unchecked,
    }
}

/// What one object gave.
struct Judged {
    checked: Checked,
    items: Vec<Item>,
    status: Option<Status>,
    /// Its key, when the newest approved commit holds it (to find what the cluster lacks).
    key: Option<Key>,
    subject: Option<Subject>,
}

impl Judged {
    /// An object that could not be judged: one unchecked error at its API path.
    fn failed(what: &str, api_path: &str, message: String) -> Judged {
        Judged {
            checked: Checked {
                path: api_path.to_string(),
                line: 0,
                operation: "AUDIT".into(),
                object: what.to_string(),
            },
            items: vec![Item {
                path: api_path.to_string(),
                line: 0,
                level: Level::Error,
                policy: "gitgate".into(),
                message,
                operation: Some("AUDIT".into()),
                object: Some(what.to_string()),
                unchecked: true,
            }],
            status: None,
            key: None,
            subject: None,
        }
    }
}

/// Audits what `plan` names. Objects the newest approved commit holds are reported missing
/// only for kinds listed completely or not served (a kind that could not be listed says
/// nothing of its objects).
pub fn run(ctx: &Context<'_>, plan: Plan) -> Outcome {
    let started = Instant::now();
    let Plan {
        kinds,
        absent,
        items,
        excluded_namespaces,
    } = plan;
    let excluded = |ns: Option<&str>| {
        ns.is_some_and(|ns| {
            excluded_namespaces
                .iter()
                .any(|p| crate::policy::matcher::glob_match(p, ns))
        })
    };
    let mut report = Report {
        items,
        audit: Some(Audited {
            server: ctx.connection.server.clone(),
            ..Audited::default()
        }),
        ..Report::default()
    };
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen: HashSet<Key> = HashSet::new();
    // (group, kind) listed completely, or not served at all (the cluster holds none).
    let mut listed: HashSet<(String, String)> = absent
        .iter()
        .map(|k| (k.group.clone(), k.kind.clone()))
        .collect();
    let mut kinds_read = Vec::new();
    let mut subjects = Vec::new();
    for kind in &kinds {
        let mut pages = ctx.connection.pages(kind);
        let complete = loop {
            match ctx.runtime.block_on(pages.next()) {
                Ok(Some(mut objects)) => {
                    objects.retain(|o| {
                        !excluded(o.pointer("/metadata/namespace").and_then(Value::as_str))
                    });
                    for judged in judge_page(ctx, kind, objects) {
                        let status = judged.status.map_or("none", Status::as_str);
                        *statuses.entry(status.to_string()).or_default() += 1;
                        if let Some(key) = judged.key {
                            seen.insert(key);
                        }
                        subjects.extend(judged.subject);
                        report.checked.push(judged.checked);
                        report.items.extend(judged.items);
                    }
                }
                Ok(None) => break true,
                Err(e) => {
                    report.items.push(Item {
                        path: kind.url_path(),
                        line: 0,
                        level: Level::Error,
                        policy: "gitgate".into(),
                        message: format!("cannot list {}: {e}", kind.describe()),
                        operation: None,
                        object: None,
                        unchecked: true,
                    });
                    break false;
                }
            }
        };
        if complete {
            listed.insert((kind.group.clone(), kind.kind.clone()));
            kinds_read.push(kind.describe());
        }
    }
    let mut missing = 0;
    if let Some(index) = ctx.index {
        let newest = index.commits().next().map(|c| c.to_string());
        let mut lacking: Vec<Item> = index
            .newest_objects()
            .filter(|(key, _)| listed.contains(&(key.0.clone(), key.1.clone())))
            .filter(|(key, _)| !excluded(key.2.as_deref()))
            .filter(|(key, _)| !seen.contains(*key))
            .map(|(key, version)| {
                let what = describe_key(key);
                Item {
                    path: version.path.to_string(),
                    line: version.line,
                    level: Level::Error,
                    policy: MISSING.into(),
                    message: format!(
                        "{what} is in the newest approved commit {} but not in the cluster",
                        verdict::short(newest.as_deref().unwrap_or(""))
                    ),
                    operation: Some("AUDIT".into()),
                    object: Some(what),
                    unchecked: false,
                }
            })
            .collect();
        missing = lacking.len();
        report.items.append(&mut lacking);
    }
    let mut violations: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    for item in &report.items {
        if item.operation.is_some() && !item.unchecked {
            let action = match item.level {
                Level::Error => Enforcement::Deny.as_str(),
                Level::Warning => Enforcement::Warn.as_str(),
                Level::Note => Enforcement::Dryrun.as_str(),
            };
            *violations.entry((item.policy.clone(), action)).or_default() += 1;
        }
    }
    report.items.sort_by(|a, b| {
        (a.path.as_str(), a.line, a.level).cmp(&(b.path.as_str(), b.line, b.level))
    });
    if let Some(audit) = report.audit.as_mut() {
        audit.kinds = kinds_read;
        audit.provenance = statuses;
        audit.missing = missing;
    }
    Outcome {
        report,
        violations,
        duration: started.elapsed(),
        subjects,
    }
}

/// `Deployment.apps web/web` of an index key.
fn describe_key(key: &Key) -> String {
    let gk = if key.0.is_empty() {
        key.1.clone()
    } else {
        format!("{}.{}", key.1, key.0)
    };
    match &key.2 {
        Some(ns) => format!("{gk} {ns}/{}", key.3),
        None => format!("{gk} {}", key.3),
    }
}

/// Judges a page's objects on `ctx.threads` threads, in order.
fn judge_page(ctx: &Context<'_>, kind: &Resolved, objects: Vec<Value>) -> Vec<Judged> {
    // What an object is, taken before its work starts: an object whose work panics outside
    // the policies' guard is reported unchecked, never dropped (the audit then exits 2).
    let describe = |o: &Value| {
        let identity = Identity::of_object(o);
        let what = identity
            .as_ref()
            .map(Identity::describe)
            .unwrap_or_else(|| kind.describe());
        let path = identity.as_ref().map_or_else(
            || kind.url_path(),
            |id| kind.object_path(id.namespace.as_deref(), &id.name),
        );
        (what, path)
    };
    // What objects are judged by, built once for the page (not once per object).
    let rules = verdict::Rules::from(ctx.config);
    guard::fan_out(
        objects,
        ctx.threads,
        describe,
        |o| judge(ctx, &rules, kind, o),
        |(what, path), why| Judged::failed(&what, &path, format!("internal error (panic): {why}")),
    )
}

/// The provenance verdict of an object already in the cluster: a CREATE of it now, by nobody
/// in particular (so no user, group or break-glass exemption), except that an object a
/// controller owns is exempt (see the module doc).
fn audit_verdict(doc: &Document, index: &Index, rules: &verdict::Rules) -> Verdict {
    let controlled = doc
        .review
        .object
        .as_ref()
        .and_then(|o| o.pointer("/metadata/ownerReferences"))
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find(|r| r.get("controller") == Some(&Value::Bool(true)))
        })
        .map(|r| {
            format!(
                "{} {}",
                r.get("kind").and_then(Value::as_str).unwrap_or("?"),
                r.get("name").and_then(Value::as_str).unwrap_or("?")
            )
        });
    match controlled {
        Some(owner) => Verdict {
            status: Status::Exempt,
            reason: format!("owned by the controller of {owner}, which is audited in its place"),
            commit: None,
            path: None,
            line: None,
            differing: Vec::new(),
            unattested: Vec::new(),
            break_glass: None,
            source: None,
        },
        None => verdict::judge(&doc.review, index, rules),
    }
}

fn judge(ctx: &Context<'_>, rules: &verdict::Rules, kind: &Resolved, object: Value) -> Judged {
    let identity = Identity::of_object(&object);
    let what = identity
        .as_ref()
        .map(Identity::describe)
        .unwrap_or_else(|| kind.describe());
    let api_path = identity.as_ref().map_or_else(
        || kind.url_path(),
        |id| kind.object_path(id.namespace.as_deref(), &id.name),
    );
    let key = identity
        .as_ref()
        .filter(|id| ctx.index.is_some_and(|i| i.in_newest(id)))
        .map(index::key);
    let mut subject = ctx.keep_subjects.then(|| {
        let text = |p: &str| {
            object
                .pointer(p)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Subject {
            api_version: text("/apiVersion").unwrap_or_default(),
            kind: text("/kind").unwrap_or_default(),
            namespace: text("/metadata/namespace"),
            name: text("/metadata/name").unwrap_or_default(),
            uid: text("/metadata/uid"),
            findings: Vec::new(),
        }
    });
    let checked = |path: &str, line: usize| Checked {
        path: path.to_string(),
        line,
        operation: "AUDIT".into(),
        object: what.clone(),
    };
    guard::injected_panic(&what);
    let failed = |message: String, subject: Option<Subject>| {
        let failed = Judged::failed(&what, &api_path, message);
        Judged {
            subject: subject.map(|s| Subject {
                findings: failed.items.clone(),
                ..s
            }),
            key: key.clone(),
            ..failed
        }
    };
    let mut doc = match Document::from_manifest(
        &api_path,
        Operation::Create,
        Some(object),
        None,
        Source::audit(),
    ) {
        Ok(doc) => doc,
        Err(e) => return failed(e.to_string(), subject),
    };
    let mut status = None;
    // Where the finding points: the manifest in Git when the window holds the object, else
    // the object's API path.
    let (mut path, mut line) = (api_path.clone(), 0);
    if let Some(index) = ctx.index {
        let verdict = audit_verdict(&doc, index, rules);
        status = Some(verdict.status);
        if let (Some(p), Some(l)) = (&verdict.path, verdict.line) {
            (path, line) = (p.clone(), l);
        }
        doc.provenance = Some(verdict);
    }
    let decision = decision::decide(
        ctx.policies,
        &doc,
        &Decide {
            namespaces: ctx.view,
            data: ctx.view.data(),
        },
    );
    let items = Item::of_decision(
        &decision,
        &At {
            operation: "AUDIT",
            object: Some(&what),
        },
        |_| (path.clone(), line),
    );
    if let Some(subject) = subject.as_mut() {
        subject.findings = items.clone();
    }
    Judged {
        checked: checked(&path, line),
        items,
        status,
        key,
        subject,
    }
}
