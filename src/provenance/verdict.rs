//! The traceability verdict of one admission request, as policies see it in
//! `input.provenance`: exempt (by configuration, or break-glass), traceable to an approved
//! commit, modified (Git holds the object, but not as it is), or untraceable.
//!
//! When the window holds no approved commit the verdict fails closed: nothing is traceable,
//! and a DELETE of what the last approved commit held is untraceable (an empty window cannot
//! say "Git no longer holds it"). A break-glass reason is read from the object, or at DELETE
//! (where the object is null) from the old object.
//!
//! **No cascade around the gate.** Deleting a Namespace deletes every object inside it, and
//! deleting a CustomResourceDefinition deletes every custom resource of its kind: the garbage
//! collector would remove what Git approved. So such a DELETE is refused while the newest
//! approved commit holds objects inside the Namespace or of the CRD's group and kind,
//! whether or not Git holds the Namespace or the CRD itself; the reason names one of them and
//! how many there are.
//!
//! **Scope comes from the request**: a custom resource whose CRD is not in the window is
//! found under the scope its request has ([`Index::lookup`]), and when its manifest named a
//! namespace that the API server dropped (a cluster-scoped kind), it is compared without it.

use std::sync::Arc;

use serde_json::Value;

use super::index::Index;
use super::matching::{self, ExpectedStamps, MatchOptions, Picks, Writer};
use crate::input::{Identity, Review};
use crate::policy::matcher::glob_match;
use kube_core::admission::Operation;

pub use crate::input::{BreakGlass, Status, Verdict};

/// What a request is judged by besides Git, built once from the configuration
/// (the setup step, `setup.rs`): the exemptions, the break-glass path, the stamps and mutation
/// allowances of the match, and the GitOps controllers' identities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub exempt: Exemptions,
    pub break_glass: BreakGlassRule,
    pub options: MatchOptions,
    /// Who may add or change a tracking stamp (user names or groups).
    pub controllers: Vec<String>,
    /// helm-controller's user name: the objects it writes for a HelmRelease whose chart comes
    /// from a chart repository are delegated to that release.
    pub helm_controller: String,
}

/// `exempt:`: who and what is exempt from provenance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    /// Namespaces (globs) whose objects are exempt (never a Namespace object itself).
    pub namespaces: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    /// Controllers allowed to write objects they own.
    pub controllers: Vec<String>,
    /// Subresources exempt for their own field.
    pub subresources: Vec<String>,
}

/// `breakGlass:`: the groups that may make an emergency change, and the annotation that must
/// say why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakGlassRule {
    pub groups: Vec<String>,
    pub reason_annotation: String,
}

/// What [`judge`] takes: [`Rules`] built once, or something to build them from (a
/// configuration, for a one-off reading).
pub trait AsRules {
    fn rules(&self) -> std::borrow::Cow<'_, Rules>;
}

impl AsRules for Rules {
    fn rules(&self) -> std::borrow::Cow<'_, Rules> {
        std::borrow::Cow::Borrowed(self)
    }
}

/// The workload kinds whose `scale` subresource is judged against their manifest.
const SCALABLE: &[(&str, &str, &str)] = &[
    ("apps", "deployments", "Deployment"),
    ("apps", "statefulsets", "StatefulSet"),
    ("apps", "replicasets", "ReplicaSet"),
    ("", "replicationcontrollers", "ReplicationController"),
];

/// Judges one admission request against the index of the approved window.
pub fn judge(review: &Review, index: &Index, rules: &(impl AsRules + ?Sized)) -> Verdict {
    judge_with(review, index, rules, || None)
}

/// [`judge`], with the CustomResourceDefinition of the request's kind as the cluster serves
/// it, for a custom resource whose CRD Git does not hold: its structural schema's defaults
/// then explain what the API server filled in. A CRD in the approved window wins, and the
/// cluster's is only asked for when there is none.
pub fn judge_with(
    review: &Review,
    index: &Index,
    rules: &(impl AsRules + ?Sized),
    cluster_crd: impl FnOnce() -> Option<Arc<serde_json::Value>>,
) -> Verdict {
    judge_in(review, index, rules, cluster_crd, None)
}

/// [`judge_with`], with what the watched cluster says the admission plugins pick (its default
/// IngressClass, StorageClass and PriorityClass), beside what Git's newest approved commit
/// holds.
pub fn judge_in(
    review: &Review,
    index: &Index,
    rules: &(impl AsRules + ?Sized),
    cluster_crd: impl FnOnce() -> Option<Arc<serde_json::Value>>,
    cluster_picks: Option<&Picks>,
) -> Verdict {
    let rules = rules.rules();
    if let Some(v) = exemption(review, &rules) {
        return v;
    }
    let subject = review
        .object
        .as_ref()
        .filter(|o| !o.is_null())
        .or(review.old_object.as_ref().filter(|o| !o.is_null()));
    let Some(identity) = identity_of(review, subject) else {
        return Verdict::simple(
            Status::Untraceable,
            "the request names no object gitgate can look up",
        );
    };
    let what = identity.describe();
    if review.operation == Operation::Delete {
        if let Some(refused) = cascade(index, &identity, subject, &what) {
            return refused;
        }
        if index.window_is_empty() {
            return closed_delete(index, &identity, &what);
        }
        return if index.in_newest(&identity) {
            Verdict::simple(
                Status::Untraceable,
                format!("{what} is still in the newest approved commit: delete it in Git first"),
            )
        } else {
            Verdict::simple(
                Status::Traceable,
                format!("{what} is no longer in the newest approved commit"),
            )
        };
    }
    let Some(object) = review.object.as_ref().filter(|o| !o.is_null()) else {
        return Verdict::simple(Status::Untraceable, "the request carries no object");
    };
    if let Some(reason) = index.empty_window_reason() {
        return Verdict::simple(
            Status::Untraceable,
            format!("{what} cannot be traced: {reason}"),
        );
    }
    let versions = index.lookup(&identity);
    if versions.is_empty()
        && let Some(v) = delegated(review, index, &rules, object, &identity)
    {
        return v;
    }
    if versions.is_empty() {
        return Verdict::simple(
            Status::Untraceable,
            format!("no approved commit in the window holds {what}"),
        );
    }
    // No resurrection: what a newer approved commit removed is not created again from an
    // older one, whoever asks (a rollback is a revert in Git).
    if review.operation == Operation::Create && !index.in_newest(&identity) {
        let by = index.removed_by(&identity);
        let removed = by.map_or_else(
            || "the newest approved commit no longer holds it".to_string(),
            |c| format!("approved commit {} removed it", short(&c.to_string())),
        );
        return Verdict {
            commit: by.map(|c| c.to_string()),
            ..Verdict::simple(
                Status::Untraceable,
                format!(
                    "{what} cannot be created again: {removed}, and an older approved commit is no source for a new object (to bring it back, revert the removal in Git)"
                ),
            )
        };
    }
    let options = &rules.options;
    let crd = super::crd::lookup(index, review).or_else(cluster_crd);
    let automount = service_account_automount(index, review, object);
    let others = WindowVersions::new(versions);
    let writer = writer_of(review, &rules);
    let replicas = index.autoscaled(
        identity.namespace.as_deref(),
        &identity.kind,
        &identity.name,
    );
    let mut closest = None;
    for (i, version) in versions.iter().enumerate() {
        let flux = index.flux_kustomization(&version.source, &version.path);
        // A Kustomization's `serviceAccountName` (Flux's multi-tenancy) is the identity its
        // objects are applied as: the GitOps controller for those objects only.
        let writer = match (&flux, writer) {
            (Some((name, namespace)), Writer::Other)
                if index
                    .flux_service_account(namespace, name)
                    .is_some_and(|sa| {
                        user_is(review, &format!("system:serviceaccount:{namespace}:{sa}"))
                    }) =>
            {
                Writer::Controller
            }
            _ => writer,
        };
        let expected = ExpectedStamps {
            flux,
            argo_app: followed_application(&version.source),
        };
        let context = matching::Context {
            crd: crd.as_deref(),
            writer,
            picks: Some(index.picks()),
            cluster_picks,
            expected: Some(&expected),
            automount,
            others: &others,
            replicas,
            limits: identity
                .namespace
                .as_deref()
                .and_then(|ns| index.limit_defaults(ns)),
        };
        let manifest = others.manifest(i);
        let in_scope = in_request_scope(manifest, &identity);
        let outcome = matching::compare_in(
            in_scope.as_ref().unwrap_or(manifest),
            object,
            review.old_object.as_ref(),
            options,
            context,
        );
        let verdict = |status: Status, reason: String| Verdict {
            status,
            reason,
            commit: Some(version.commit.to_string()),
            path: Some(version.path.to_string()),
            line: Some(version.line),
            source: Some(version.source.to_string()),
            differing: outcome.differing.clone(),
            unattested: outcome.unattested.clone(),
            break_glass: None,
        };
        if outcome.status == matching::Status::Traceable {
            return verdict(
                Status::Traceable,
                format!(
                    "{what} is as approved commit {} holds it ({}:{})",
                    short(&version.commit.to_string()),
                    version.path,
                    version.line
                ),
            );
        }
        closest.get_or_insert_with(|| {
            verdict(
                Status::Modified,
                format!(
                    "{what} is not as approved commit {} ({}:{}) holds it: {}",
                    short(&version.commit.to_string()),
                    version.path,
                    version.line,
                    outcome.describe(10)
                ),
            )
        });
    }
    closest.unwrap_or_else(|| Verdict::simple(Status::Untraceable, "no version matched"))
}

/// The versions of the window a comparison may read besides its own: parsed only when read
/// (an older version is kept compact by the index), and then once for the whole request (a
/// comparison that ends `modified` reads every other version for each removed value).
struct WindowVersions<'a> {
    versions: &'a [super::index::Version],
    parsed: Vec<std::cell::OnceCell<Arc<Value>>>,
}

impl<'a> WindowVersions<'a> {
    fn new(versions: &'a [super::index::Version]) -> Self {
        WindowVersions {
            versions,
            parsed: versions
                .iter()
                .map(|_| std::cell::OnceCell::new())
                .collect(),
        }
    }

    /// Version `i`'s manifest, parsed at most once.
    fn manifest(&self, i: usize) -> &Value {
        self.parsed[i].get_or_init(|| self.versions[i].manifest())
    }
}

impl matching::Others for WindowVersions<'_> {
    fn any(&self, sets: &mut dyn FnMut(&Value) -> bool) -> bool {
        (0..self.versions.len()).any(|i| sets(self.manifest(i)))
    }
}

/// Git's manifest with the request's namespace, when they differ: a manifest that named a
/// namespace for a kind the API server keeps cluster-scoped (its CRD not in Git) is found by
/// a request without one ([`Index::lookup`]), and the API server has dropped the namespace.
fn in_request_scope(manifest: &Value, identity: &Identity) -> Option<Value> {
    let namespace = manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());
    if identity.namespace.is_some() || namespace.is_none() {
        return None;
    }
    let mut copy = manifest.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("namespace");
    }
    Some(copy)
}

/// The DELETE of a Namespace or a CustomResourceDefinition while the newest approved commit
/// (or, with an empty window, the last one) holds objects that it would take with it:
/// refused, naming one of them and how many there are.
fn cascade(
    index: &Index,
    identity: &Identity,
    subject: Option<&Value>,
    what: &str,
) -> Option<Verdict> {
    let (held, whose) = match (identity.group.as_str(), identity.kind.as_str()) {
        ("", "Namespace") => (index.inside_namespace(&identity.name)?, "inside it"),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            // The CRD being deleted (the old object) says what it defines; Git's copy, when
            // the request lacks it.
            let defines = |crd: &Value| {
                let group = crd.pointer("/spec/group").and_then(Value::as_str)?;
                let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str)?;
                Some((group.to_string(), kind.to_string()))
            };
            let (group, kind) = subject.and_then(defines).or_else(|| {
                index
                    .lookup(identity)
                    .first()
                    .and_then(|v| defines(&v.manifest()))
            })?;
            (index.of_kind(&group, &kind)?, "of the kind it defines")
        }
        _ => return None,
    };
    let (count, example) = held;
    let commit = index.last_approved().map(|c| c.to_string());
    let at = commit
        .as_deref()
        .map(|c| format!("approved commit {}", short(c)))
        .unwrap_or_else(|| "the newest approved commit".into());
    Some(Verdict {
        commit,
        ..Verdict::simple(
            Status::Untraceable,
            format!(
                "deleting {what} would delete the {count} object(s) {whose} that {at} holds (such as {}): remove them from Git first",
                example.describe()
            ),
        )
    })
}

/// A DELETE while the window holds no approved commit: refused when the last approved commit
/// held the object, or when no approved commit was ever seen.
fn closed_delete(index: &Index, identity: &Identity, what: &str) -> Verdict {
    let reason = index.empty_window_reason().unwrap_or_default();
    match index.last_approved() {
        Some(last) if !index.in_newest(identity) => Verdict::simple(
            Status::Traceable,
            format!(
                "{what} was not in the last approved commit {} ({reason})",
                short(&last.to_string())
            ),
        ),
        Some(last) => Verdict {
            commit: Some(last.to_string()),
            ..Verdict::simple(
                Status::Untraceable,
                format!(
                    "{what} was in the last approved commit {}, and its deletion cannot be traced: {reason}",
                    short(&last.to_string())
                ),
            )
        },
        None => Verdict::simple(
            Status::Untraceable,
            format!("the deletion of {what} cannot be traced: {reason}"),
        ),
    }
}

/// A commit id as messages show it (12 hex digits).
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The identity judged: the object's, or for a `scale` subresource the scaled workload's.
fn identity_of(review: &Review, subject: Option<&Value>) -> Option<Identity> {
    if review.sub_resource.as_deref() == Some("scale") {
        let resource = review.resource.as_ref()?;
        let (_, _, kind) = SCALABLE
            .iter()
            .find(|(g, r, _)| *g == resource.group && *r == resource.resource)?;
        return Some(Identity {
            group: resource.group.clone(),
            version: resource.version.clone(),
            kind: kind.to_string(),
            namespace: review.namespace.clone().filter(|n| !n.is_empty()),
            name: review.name.clone(),
        });
    }
    Identity::of_object(subject?)
}

/// Who writes, for tracking stamps: the GitOps controller (`provenance.controllers` names its
/// user, or a group it is in, such as the service accounts of Flux's tenants), anyone else,
/// or not known (a request with no user: an audit of the cluster).
/// The verdict of an object Git does not hold that carries helm-controller's labels for a
/// HelmRelease of the newest approved commit whose chart comes from a chart repository:
/// delegated to that release when helm-controller (or the service account the release names)
/// writes it in the release's target namespace; refused otherwise. `None` when the labels name
/// no such release.
fn delegated(
    review: &Review,
    index: &Index,
    rules: &Rules,
    object: &Value,
    identity: &Identity,
) -> Option<Verdict> {
    let label = |k: &str| {
        object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    let name = label("helm.toolkit.fluxcd.io/name")?;
    let namespace = label("helm.toolkit.fluxcd.io/namespace")?;
    let release = index.delegation(namespace, name)?;
    let what = identity.describe();
    let writer = match &release.service_account {
        Some(sa) => format!("system:serviceaccount:{namespace}:{sa}"),
        None => rules.helm_controller.clone(),
    };
    let user = review
        .user_info
        .as_ref()
        .and_then(|u| u.username.as_deref())
        .unwrap_or("an unknown user");
    if user != writer {
        return Some(Verdict::simple(
            Status::Untraceable,
            format!(
                "{what} carries the labels of HelmRelease {namespace}/{name}, but {user} writes it: only {writer} applies that release's objects"
            ),
        ));
    }
    if identity.namespace.as_deref() != Some(release.namespace.as_str()) {
        return Some(Verdict::simple(
            Status::Untraceable,
            format!(
                "{what} is not in namespace {}, where HelmRelease {namespace}/{name} installs its chart",
                release.namespace
            ),
        ));
    }
    let commit = index.last_approved().map(|c| c.to_string());
    Some(Verdict {
        commit: commit.clone(),
        ..Verdict::simple(
            Status::Delegated,
            format!(
                "delegated to HelmRelease {namespace}/{name} of approved commit {} (chart {}): Git approves the release, its chart version and values, not each object",
                commit.as_deref().map_or("?", short),
                release.chart
            ),
        )
    })
}

/// The Argo CD Application a followed source names (`dir (Application ns/name)`): the
/// value of its tracking stamps.
fn followed_application(source: &str) -> Option<String> {
    source
        .strip_suffix(')')
        .and_then(|s| s.rsplit_once(" (Application "))
        .and_then(|(_, by)| by.split_once('/'))
        .map(|(_, name)| name.to_string())
}

/// Whether the request's user is `name`.
fn user_is(review: &Review, name: &str) -> bool {
    review
        .user_info
        .as_ref()
        .and_then(|u| u.username.as_deref())
        == Some(name)
}

fn writer_of(review: &Review, rules: &Rules) -> Writer {
    let Some(user) = review.user_info.as_ref() else {
        return Writer::Unknown;
    };
    let Some(name) = user.username.as_deref() else {
        return Writer::Unknown;
    };
    let controllers = &rules.controllers;
    let named = |who: &str| controllers.iter().any(|c| c == who);
    if named(name) || user.groups.iter().flatten().any(|g| named(g)) {
        Writer::Controller
    } else {
        Writer::Other
    }
}

/// A Pod's service account's `automountServiceAccountToken` as Git's newest approved commit
/// holds it (`None` for another kind, or a service account Git does not hold).
fn service_account_automount(index: &Index, review: &Review, object: &Value) -> Option<bool> {
    if review.kind.kind != "Pod" || !review.kind.group.is_empty() {
        return None;
    }
    let name = object
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    let account = Identity {
        group: String::new(),
        version: "v1".into(),
        kind: "ServiceAccount".into(),
        namespace: review.namespace.clone().filter(|n| !n.is_empty()),
        name: name.to_string(),
    };
    index
        .in_newest_version(&account)?
        .manifest()
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
}

/// Requests answered at once, before anything else is read: Leases and Events (never judged,
/// whatever the configuration: leader election and heartbeats must never wait on the gate),
/// and writes through an exempt subresource by an exempt user or group, or that change
/// nothing but that subresource's own field (a status write, the most frequent write of a
/// cluster). `None`: the request is decided.
pub fn fast_path(review: &Review, exempt: &Exemptions) -> Option<String> {
    if let Some(why) = never_judged(review) {
        return Some(why);
    }
    let sub = review
        .sub_resource
        .as_deref()
        .filter(|s| exempt.subresources.iter().any(|e| e == s))?;
    if let Some(who) = exempt_identity(review, exempt) {
        return Some(format!("subresource {sub} written by {who}"));
    }
    subresource_only(review, sub).then(|| format!("subresource {sub} is exempt"))
}

/// Leases (`coordination.k8s.io`) and Events (core and `events.k8s.io`): never judged. Told by
/// the resource the API server names (from the URL, which a request cannot choose), the kind
/// only where a request carries no resource.
fn never_judged(review: &Review) -> Option<String> {
    let (group, lease, event) = match &review.resource {
        Some(r) => (
            r.group.as_str(),
            r.resource == "leases",
            r.resource == "events",
        ),
        None => (
            review.kind.group.as_str(),
            review.kind.kind == "Lease",
            review.kind.kind == "Event",
        ),
    };
    if lease && group == "coordination.k8s.io" {
        Some("Leases are never judged".into())
    } else if event && (group.is_empty() || group == "events.k8s.io") {
        Some("Events are never judged".into())
    } else {
        None
    }
}

/// The exempt user or group making the request, if it is one.
fn exempt_identity(review: &Review, ex: &Exemptions) -> Option<String> {
    let user = review.user_info.as_ref()?;
    if let Some(name) = user.username.as_ref().filter(|u| ex.users.contains(u)) {
        return Some(format!("user {name}"));
    }
    user.groups
        .iter()
        .flatten()
        .find(|g| ex.groups.contains(g))
        .map(|g| format!("group {g}"))
}

/// The fields a subresource writes: `status` its own (so do a CSR's `approval`), a Namespace's
/// `finalize` its finalizers, `ephemeralcontainers` the ephemeral containers; any other, the
/// field of its name.
fn subresource_fields(sub: &str) -> &'static [&'static [&'static str]] {
    match sub {
        "status" | "approval" => &[&["status"]],
        "finalize" => &[&["spec", "finalizers"]],
        "ephemeralcontainers" => &[&["spec", "ephemeralContainers"]],
        "resize" => &[&["spec", "containers"]],
        _ => &[],
    }
}

/// Whether a write through subresource `sub` changes nothing but that subresource's own
/// fields (and what the API server itself updates on every write: the resource version, the
/// managed fields). A request without both objects changes something else.
fn subresource_only(review: &Review, sub: &str) -> bool {
    let (Some(new), Some(old)) = (
        review.object.as_ref().filter(|o| !o.is_null()),
        review.old_object.as_ref().filter(|o| !o.is_null()),
    ) else {
        return false;
    };
    let fields = subresource_fields(sub);
    let own = |path: &[&str]| {
        if fields.is_empty() {
            path.len() == 1 && path[0] == sub
        } else {
            fields.contains(&path)
        }
    };
    same_except(new, old, &mut Vec::new(), &own)
}

static NULL: Value = Value::Null;

/// `a` and `b` are the same but at the paths `skip` names, and the metadata the API server
/// changes on every write.
fn same_except<'v>(
    a: &'v Value,
    b: &'v Value,
    path: &mut Vec<&'v str>,
    skip: &dyn Fn(&[&str]) -> bool,
) -> bool {
    if skip(path) {
        return true;
    }
    if let [
        "metadata",
        "resourceVersion" | "managedFields" | "generation" | "selfLink",
    ] = path.as_slice()
    {
        return true;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                path.push(k);
                let same = same_except(
                    x.get(k).unwrap_or(&NULL),
                    y.get(k).unwrap_or(&NULL),
                    path,
                    skip,
                );
                path.pop();
                if !same {
                    return false;
                }
            }
            true
        }
        _ => a == b,
    }
}

/// Exemptions by configuration and the break-glass path. A write through an exempt
/// subresource that changes anything but that subresource's own field is judged as an
/// UPDATE; `exempt.namespaces` exempts what is inside a namespace, never a Namespace object
/// itself (whose request names its own name as its namespace).
pub fn exemption(review: &Review, rules: &Rules) -> Option<Verdict> {
    let ex = &rules.exempt;
    if let Some(why) = never_judged(review) {
        return Some(Verdict::simple(Status::Exempt, why));
    }
    let user = review.user_info.as_ref();
    let username = user.and_then(|u| u.username.clone()).unwrap_or_default();
    let groups: Vec<String> = user.and_then(|u| u.groups.clone()).unwrap_or_default();
    let is_namespace = review.kind.group.is_empty() && review.kind.kind == "Namespace"
        || review
            .resource
            .as_ref()
            .is_some_and(|r| r.group.is_empty() && r.resource == "namespaces");
    if let Some(ns) = review.namespace.as_deref().filter(|n| !n.is_empty())
        && !is_namespace
        && ex.namespaces.iter().any(|p| glob_match(p, ns))
    {
        return Some(Verdict::simple(
            Status::Exempt,
            format!("namespace {ns} is exempt"),
        ));
    }
    if ex.users.contains(&username) {
        return Some(Verdict::simple(
            Status::Exempt,
            format!("user {username} is exempt"),
        ));
    }
    if let Some(g) = groups.iter().find(|g| ex.groups.contains(g)) {
        return Some(Verdict::simple(
            Status::Exempt,
            format!("group {g} is exempt"),
        ));
    }
    if let Some(sub) = review
        .sub_resource
        .as_deref()
        .filter(|s| ex.subresources.iter().any(|e| e == s))
        && subresource_only(review, sub)
    {
        return Some(Verdict::simple(
            Status::Exempt,
            format!("subresource {sub} is exempt"),
        ));
    }
    // An ownerReference alone can be forged: only an allowed controller's request counts.
    let subject = review.object.as_ref().or(review.old_object.as_ref());
    let controlled = subject
        .and_then(|o| o.pointer("/metadata/ownerReferences"))
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller") == Some(&Value::Bool(true)))
        });
    if controlled && ex.controllers.contains(&username) {
        return Some(Verdict::simple(
            Status::Exempt,
            format!("owned by a controller and requested by the allowed controller {username}"),
        ));
    }
    let bg = &rules.break_glass;
    if groups.iter().any(|g| bg.groups.contains(g)) {
        // At DELETE the object is null and the reason is on the object being deleted.
        let reason = review
            .object
            .as_ref()
            .filter(|o| !o.is_null())
            .or(review.old_object.as_ref())
            .and_then(|o| o.pointer("/metadata/annotations"))
            .and_then(|a| a.get(&bg.reason_annotation))
            .and_then(Value::as_str)
            .filter(|r| !r.trim().is_empty());
        if let Some(reason) = reason {
            let mut v = Verdict::simple(
                Status::Exempt,
                format!("break-glass by {username}: {reason} (reported until Git catches up)"),
            );
            v.break_glass = Some(BreakGlass {
                user: username,
                reason: reason.to_string(),
            });
            return Some(v);
        }
    }
    None
}
