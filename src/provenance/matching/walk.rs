//! The walker of [`super::compare`]: one pass over Git's manifest, the object and the old object
//! together, in the object's shape. Lists are matched through hash maps of their merge keys (or
//! of whole items, for sets), so the walk is linear in the size of the three documents.

use std::borrow::Cow;

use foldhash::{HashMap, HashMapExt};

use serde_json::Value;

use crate::provenance::closed::Stamps;
use crate::provenance::defaults::{self, At, Defaulted, Pick, key_default};
use crate::provenance::path::{Pattern, Seg, render};
use crate::provenance::quantity;
use crate::provenance::schema::{self, ListKind};
use crate::provenance::value::{canonical, same_value, write_canonical};

/// The merge-key fields of a keyed list, each with the default of a field an item leaves out.
type Keys = &'static [(&'static str, Option<&'static str>)];

/// An item's merge key: the text it is hashed by (borrowed from the item for the usual one
/// string key, such as a `name`), and the item.
struct Key<'v> {
    text: Cow<'v, str>,
    item: &'v Value,
}

impl<'v> Key<'v> {
    /// The path segment of the item.
    fn seg(&self, keys: Keys) -> Seg<'v> {
        item_seg(self.item, keys)
    }
}

/// The path segment of a keyed item: its merge-key fields, borrowed where they can be.
fn item_seg(item: &Value, keys: Keys) -> Seg<'_> {
    Seg::Key(
        keys.iter()
            .map(|(field, default)| {
                let value = match item.get(*field).filter(|v| !v.is_null()) {
                    Some(v) => Cow::Borrowed(v),
                    None => Cow::Owned(Value::String(default.unwrap_or_default().into())),
                };
                (Cow::Borrowed(*field), value)
            })
            .collect(),
    )
}

/// What the walker starts from.
pub(super) struct Setup<'a> {
    pub kind: &'a str,
    pub git: &'a Value,
    pub object: &'a Value,
    pub old_object: Option<&'a Value>,
    /// Git's manifest with the CRD's defaults applied (custom resources).
    pub crd_defaults: Option<&'a Value>,
    pub stamps: &'a Stamps,
    /// The allowances' paths for this kind.
    pub mutations: Vec<&'a Pattern>,
    /// Off for a Scale.
    pub defaults: bool,
    /// A custom resource: the API server stores its JSON as sent, so an explicit zero stays.
    pub custom: bool,
    /// Who writes, what the admission plugins would pick, the stamps' expected values.
    pub context: super::Context<'a>,
}

/// The nodes holding the current path's value: the object's, Git's and the old object's.
#[derive(Clone, Copy)]
struct Frame<'a> {
    obj: Option<&'a Value>,
    git: Option<&'a Value>,
    old: Option<&'a Value>,
}

pub(super) struct Walker<'a> {
    kind: &'a str,
    root: &'a Value,
    git_root: &'a Value,
    old_root: Option<&'a Value>,
    crd_defaults: Option<&'a Value>,
    stamps: &'a Stamps,
    mutations: Vec<&'a Pattern>,
    update: bool,
    defaults: bool,
    custom: bool,
    context: super::Context<'a>,
    path: Vec<Seg<'a>>,
    /// `frames[i]` holds the nodes at `path[..i]`: the last is the current value's parent.
    frames: Vec<Frame<'a>>,
    differing: Vec<String>,
    unattested: Vec<String>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(setup: Setup<'a>) -> Walker<'a> {
        Walker {
            kind: setup.kind,
            root: setup.object,
            git_root: setup.git,
            old_root: setup.old_object.filter(|o| !o.is_null()),
            crd_defaults: setup.crd_defaults,
            stamps: setup.stamps,
            mutations: setup.mutations,
            update: setup.old_object.is_some_and(|o| !o.is_null()),
            defaults: setup.defaults,
            custom: setup.custom,
            context: setup.context,
            path: Vec::new(),
            frames: Vec::new(),
            differing: Vec::new(),
            unattested: Vec::new(),
        }
    }

    /// Walks everything; returns (differing, unattested), unsorted.
    pub(super) fn run(mut self) -> (Vec<String>, Vec<String>) {
        let (git, obj, old) = (self.git_root, self.root, self.old_root);
        self.attested(git, Some(obj), old);
        (self.differing, self.unattested)
    }

    // --- paths and frames ---------------------------------------------------------------

    /// Runs `f` one level down, at `seg`, below the nodes `parent`.
    fn down(&mut self, seg: Seg<'a>, parent: Frame<'a>, f: impl FnOnce(&mut Self)) {
        self.path.push(seg);
        self.frames.push(parent);
        f(self);
        self.frames.pop();
        self.path.pop();
    }

    fn field(name: &'a str) -> Seg<'a> {
        Seg::Field(Cow::Borrowed(name))
    }

    fn differ(&mut self) {
        self.differing.push(render(&self.path));
    }

    fn differ_at(&mut self, seg: Seg<'a>) {
        self.path.push(seg);
        self.differ();
        self.path.pop();
    }

    fn unattested(&mut self) {
        self.unattested.push(render(&self.path));
    }

    /// Whether a mutation allowance covers the current path.
    fn mutated(&self) -> bool {
        !self.mutations.is_empty() && self.mutations.iter().any(|p| p.covers(&self.path))
    }

    /// Whether the current path is not Git's business: the API server's own metadata, a
    /// tracking stamp (as the old object had it, or written by whom it may be), or under a
    /// mutation allowance.
    fn owned(&self, value: &Value, old: Option<&Value>) -> bool {
        schema::server_owned(&self.path)
            || self.stamps.explains(
                &self.path,
                value,
                old,
                self.update,
                self.root,
                self.context.writer,
                self.context.expected,
            )
            || self.mutated()
    }

    /// Whether removing the value at the current path is not Git's business (a stamp may go:
    /// the controller writes it again).
    fn owned_removal(&self) -> bool {
        schema::server_owned(&self.path)
            || self.stamps.stamp_key(&self.path).is_some()
            || self.mutated()
    }

    /// Whether `value` is what an admission plugin would pick at CREATE (see
    /// [`super::Context`]).
    fn picked(&self, pick: Pick, value: &Value) -> bool {
        // Git's and the watched cluster's, read in place (no merged copy per request).
        let picks = || {
            self.context
                .picks
                .into_iter()
                .chain(self.context.cluster_picks)
        };
        let named = |list: fn(&super::Picks) -> &Vec<String>| {
            value
                .as_str()
                .is_some_and(|v| picks().any(|p| list(p).iter().any(|n| n == v)))
        };
        match pick {
            Pick::IngressClass => named(|p| &p.ingress_classes),
            Pick::StorageClass => named(|p| &p.storage_classes),
            Pick::PriorityClass => named(|p| &p.global_priority_classes),
            Pick::Priority => {
                let class = self
                    .root
                    .pointer("/spec/priorityClassName")
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty());
                let known = class.and_then(|c| picks().find_map(|p| p.priority_values.get(c)));
                match (class, known) {
                    (Some(_), Some(v)) => value.as_i64() == Some(*v),
                    // A class Git names whose value neither Git nor the cluster holds: the
                    // plugin gives its value, whatever it is.
                    (Some(c), None) => {
                        self.git_root
                            .pointer("/spec/priorityClassName")
                            .and_then(Value::as_str)
                            == Some(c)
                    }
                    // No class: the plugin writes 0.
                    (None, _) => value.as_i64() == Some(0),
                }
            }
            Pick::TokenVolume => {
                let pod = match self.kind {
                    "Pod" => self.git_root.pointer("/spec/automountServiceAccountToken"),
                    _ => None,
                };
                match pod.and_then(Value::as_bool) {
                    Some(on) => on,
                    None => self.context.automount != Some(false),
                }
            }
        }
    }

    /// Whether `value` at the current path is a replica count a HorizontalPodAutoscaler Git
    /// holds may have set: the object's own `spec.replicas`, within the autoscaler's
    /// `minReplicas..maxReplicas` ([`super::Context::replicas`]).
    fn autoscaled(&self, value: &Value) -> bool {
        let Some((min, max)) = self.context.replicas else {
            return false;
        };
        matches!(
            self.path.as_slice(),
            [Seg::Field(spec), Seg::Field(replicas)] if spec == "spec" && replicas == "replicas"
        ) && value.as_i64().is_some_and(|n| (min..=max).contains(&n))
    }

    /// Whether `value` is what the LimitRanger admission plugin writes at the current path: a
    /// Pod's container's `resources.limits.<r>` or `resources.requests.<r>` that the
    /// namespace's LimitRanges default ([`super::Context::limits`]), exactly.
    fn limit_ranged(&self, value: &Value) -> bool {
        let Some(defaults) = self.context.limits else {
            return false;
        };
        if self.kind != "Pod" {
            return false;
        }
        let [
            Seg::Field(spec),
            Seg::Field(list),
            Seg::Key(_),
            Seg::Field(resources),
            Seg::Field(which),
            Seg::Field(resource),
        ] = self.path.as_slice()
        else {
            return false;
        };
        if spec != "spec"
            || !matches!(list.as_ref(), "containers" | "initContainers")
            || resources != "resources"
        {
            return false;
        }
        let want = match which.as_ref() {
            "limits" => defaults.limits.get(resource.as_ref()),
            "requests" => defaults.requests.get(resource.as_ref()),
            _ => None,
        };
        want.is_some_and(|w| same_value(w, value) || quantity::same(w, value) == Some(true))
    }

    /// Whether another version of the manifest in the window sets the current path (Git
    /// changed it, so a picked value may vanish).
    fn others_set(&self) -> bool {
        self.context.others.any(&mut |v| {
            crate::provenance::path::resolve(v, &self.path, &key_default)
                .is_some_and(|x| !x.is_null())
        })
    }

    // --- defaults -----------------------------------------------------------------------

    /// The defaults context of `value` at the current path, in the object (or, with `old`,
    /// in the old object).
    fn at(&self, value: &'a Value, old: bool) -> Option<At<'_>> {
        let pick = |f: &Frame<'a>| if old { f.old } else { f.obj };
        let n = self.frames.len();
        Some(At {
            kind: self.kind,
            path: &self.path,
            value,
            parent: self.frames.last().and_then(pick),
            grandparent: n.checked_sub(2).and_then(|i| pick(&self.frames[i])),
            root: if old { self.old_root? } else { self.root },
            git_parent: self.frames.last().and_then(|f| f.git),
            git: self.git_root,
        })
    }

    /// The API server's claim on `value` at the current path, in the object's context (or the
    /// old object's): a built-in default, or the CRD schema's.
    fn default_of(&self, value: &'a Value, old: bool) -> Option<Defaulted> {
        if let Some(d) = self.at(value, old).and_then(|at| defaults::default_at(&at)) {
            return Some(d);
        }
        let crd = self.crd_defaults?;
        let d = crate::provenance::path::resolve(crd, &self.path, &key_default)?;
        self.leaf_same(d, value).then_some(Defaulted::Exact)
    }

    /// Whether `obj` (Git silent here; `old` the old object's value) is the API server's.
    fn explained_default(&self, obj: &'a Value, old: Option<&'a Value>) -> bool {
        if !self.defaults {
            return false;
        }
        let unchanged = self.update && old.is_some_and(|o| self.leaf_same(o, obj));
        match self.default_of(obj, false) {
            Some(Defaulted::Exact) => true,
            // Allocated at CREATE, or newly at UPDATE; a changed allocation is drift.
            Some(Defaulted::Allocated) => !self.update || old.is_none() || unchanged,
            Some(Defaulted::Later) => unchanged,
            // Picked at CREATE, as the plugin would; never appears or changes later.
            Some(Defaulted::Picked(pick)) => {
                if self.update {
                    unchanged
                } else {
                    self.picked(pick, obj)
                }
            }
            // The API server does not default a field again once it is set.
            None => unchanged && old.is_some_and(|o| self.default_of(o, true).is_some()),
        }
    }

    fn leaf_same(&self, a: &Value, b: &Value) -> bool {
        same_value(a, b)
            || (schema::is_quantity(self.kind, &self.path) && quantity::same(a, b) == Some(true))
    }

    // --- rule 1: what Git sets ----------------------------------------------------------

    /// Git sets `git` at the current path; `obj` and `old` are the object's and the old
    /// object's values there.
    fn attested(&mut self, git: &'a Value, obj: Option<&'a Value>, old: Option<&'a Value>) {
        if schema::git_skips(&self.path) || self.mutated() {
            return;
        }
        let obj = obj.filter(|v| !v.is_null());
        let old = old.filter(|v| !v.is_null());
        match (git, obj) {
            (Value::Null, Some(o)) => self.extra(o, old),
            (Value::Null, None) => {
                if let Some(o) = old {
                    self.removed(o);
                }
            }
            (Value::Object(g), Some(Value::Object(o))) => {
                let frame = Frame {
                    obj,
                    git: Some(git),
                    old,
                };
                for (k, gv) in g {
                    let (ov, oldv) = (o.get(k), old.and_then(|x| x.get(k)));
                    self.down(Self::field(k), frame, |w| w.attested(gv, ov, oldv));
                }
                for (k, ov) in o {
                    if !g.contains_key(k) {
                        let oldv = old.and_then(|x| x.get(k));
                        self.down(Self::field(k), frame, |w| w.extra(ov, oldv));
                    }
                }
                self.removed_fields(frame, |k| o.contains_key(k) || g.contains_key(k));
            }
            (Value::Object(g), None) => {
                // `emptyDir: {}` is a volume's one source: the API server keeps it, and its
                // absence means another source took its place.
                if g.is_empty() && path_ends_with_volume_source(&self.path) {
                    self.differ();
                }
                let frame = Frame {
                    obj: None,
                    git: Some(git),
                    old: None,
                };
                for (k, gv) in g {
                    self.down(Self::field(k), frame, |w| w.attested(gv, None, None));
                }
            }
            (Value::Array(g), Some(Value::Array(o))) => {
                self.list(git, g, obj, o, old, old.and_then(Value::as_array))
            }
            (Value::Array(g), None) => self.list(git, g, None, &[], None, None),
            (Value::Object(_) | Value::Array(_), Some(_)) => self.differ(),
            (scalar, Some(o)) => {
                if !self.leaf_same(scalar, o) && !self.autoscaled(o) {
                    self.differ();
                }
            }
            (scalar, None) => {
                // Git's zero is the field's absence only where the API server drops it (Go's
                // `omitempty` on a plain field of a built-in kind). A custom resource keeps
                // it, and where the old object holds it the server kept it (a pointer field):
                // its removal at UPDATE is a change (a PodDisruptionBudget's
                // `maxUnavailable: 0` taken away lets every eviction through).
                let kept_before = old.is_some_and(|o| o == scalar);
                if self.custom || kept_before || !schema::zero_is_absence(&self.path, scalar) {
                    self.differ();
                }
            }
        }
    }

    /// Rule 1 for a list Git sets.
    fn list(
        &mut self,
        git_node: &'a Value,
        g: &'a [Value],
        obj_node: Option<&'a Value>,
        o: &'a [Value],
        old_node: Option<&'a Value>,
        old: Option<&'a Vec<Value>>,
    ) {
        let frame = Frame {
            obj: obj_node,
            git: Some(git_node),
            old: old_node,
        };
        let kind = schema::list_kind(self.kind, &self.path);
        if let ListKind::Keyed(keys) = kind
            && let (Some((gk, in_git)), Some((ok, in_obj))) = (keys_of(g, keys), keys_of(o, keys))
        {
            let in_old = old.map(|l| index_by_key(l, keys));
            let old_item = |key: &str| in_old.as_ref().and_then(|m| m.get(key).copied());
            let mut positions = Vec::with_capacity(g.len());
            for (gi, key) in g.iter().zip(&gk) {
                let found = in_obj.get(key.text.as_ref()).copied();
                let seg = key.seg(keys);
                match found {
                    Some(j) => {
                        positions.push(j);
                        let old_i = old_item(&key.text);
                        self.down(seg, frame, |w| w.attested(gi, Some(&o[j]), old_i));
                    }
                    None => self.down(seg, frame, |w| {
                        if !w.mutated() {
                            w.differ()
                        }
                    }),
                }
            }
            // Order is meaning for init containers (they run in turn) and env (`$(VAR)` refers
            // to earlier entries); the API server keeps Git's order, so a reorder is an edit.
            if matches!(
                self.path.last().and_then(Seg::field),
                Some("initContainers" | "env")
            ) && positions.windows(2).any(|w| w[0] > w[1])
            {
                self.differ();
            }
            for (item, key) in o.iter().zip(&ok) {
                if !in_git.contains_key(key.text.as_ref()) {
                    let old_i = old_item(&key.text);
                    self.down(key.seg(keys), frame, |w| w.extra_whole(item, old_i));
                }
            }
            if let Some(in_old) = &in_old {
                for (text, item) in in_old {
                    if !in_obj.contains_key(text.as_ref()) && !in_git.contains_key(text.as_ref()) {
                        let item: &'a Value = item;
                        self.down(item_seg(item, keys), frame, |w| w.removed(item));
                    }
                }
            }
            return;
        }
        match kind {
            ListKind::Set => {
                let mut unused = multiset(o);
                for (i, gi) in g.iter().enumerate() {
                    if gi.is_null() {
                        continue;
                    }
                    if take(&mut unused, &canonical(gi)).is_none() {
                        self.differ_at(Seg::Index(i));
                    }
                }
                self.set_rest(frame, o, &unused, g, old);
            }
            ListKind::Prefix => {
                for (i, gi) in g.iter().enumerate() {
                    let (oi, oldi) = (o.get(i), old.and_then(|l| l.get(i)));
                    match oi {
                        Some(oi) => {
                            self.down(Seg::Index(i), frame, |w| w.attested(gi, Some(oi), oldi))
                        }
                        None => self.differ_at(Seg::Index(i)),
                    }
                }
                if o.len() > g.len() {
                    // The items the API server appended (a second IP family) are explained
                    // with the list as a whole.
                    if !self.explained_default(obj_node.unwrap_or(&Value::Null), old_node) {
                        for (j, item) in o.iter().enumerate().skip(g.len()) {
                            let oldj = old.and_then(|l| l.get(j));
                            self.down(Seg::Index(j), frame, |w| w.extra_whole(item, oldj));
                        }
                    }
                }
            }
            // Atomic, or a keyed list whose items lack keys: Git's list is one value.
            _ => {
                for i in 0..g.len().max(o.len()) {
                    match (g.get(i), o.get(i)) {
                        (Some(gi), Some(oi)) => {
                            let oldi = old.and_then(|l| l.get(i));
                            self.down(Seg::Index(i), frame, |w| w.attested(gi, Some(oi), oldi))
                        }
                        _ => self.down(Seg::Index(i), frame, |w| {
                            if !w.mutated() {
                                w.differ()
                            }
                        }),
                    }
                }
            }
        }
    }

    /// The items of a set list that Git does not hold (`unused`, by canonical text), and the
    /// old items this UPDATE removed.
    fn set_rest(
        &mut self,
        frame: Frame<'a>,
        o: &'a [Value],
        unused: &HashMap<String, Vec<usize>>,
        g: &[Value],
        old: Option<&'a Vec<Value>>,
    ) {
        let extra: Vec<usize> = {
            let mut v: Vec<usize> = unused.values().flatten().copied().collect();
            v.sort_unstable();
            v
        };
        let mut old_left = old.map(|l| multiset(l));
        for j in extra {
            let item = &o[j];
            let old_item = old_left.as_mut().and_then(|m| take(m, &canonical(item)));
            let old_item = old_item.and_then(|i| old.map(|l| &l[i]));
            self.down(Seg::Index(j), frame, |w| w.extra_whole(item, old_item));
        }
        if let (Some(old), Some(mut left)) = (old, old_left) {
            // What the object and Git still hold is not removed.
            for item in o.iter().chain(g) {
                take(&mut left, &canonical(item));
            }
            let mut removed: Vec<usize> = left.values().flatten().copied().collect();
            removed.sort_unstable();
            for i in removed {
                let item = &old[i];
                self.down(Seg::Index(i), frame, |w| w.removed(item));
            }
        }
    }

    // --- rule 2: what Git does not set --------------------------------------------------

    /// The object carries `obj` at the current path and Git does not.
    fn extra(&mut self, obj: &'a Value, old: Option<&'a Value>) {
        if obj.is_null() {
            if let Some(o) = old.filter(|o| !o.is_null()) {
                self.removed(o);
            }
            return;
        }
        if self.owned(obj, old.filter(|v| !v.is_null()))
            || self.autoscaled(obj)
            || self.limit_ranged(obj)
        {
            return;
        }
        let old = old.filter(|v| !v.is_null());
        if self.explained_default(obj, old) {
            return;
        }
        match obj {
            Value::Object(m) => {
                let frame = Frame {
                    obj: Some(obj),
                    git: None,
                    old,
                };
                for (k, v) in m {
                    let oldv = old.and_then(|x| x.get(k));
                    self.down(Self::field(k), frame, |w| w.extra(v, oldv));
                }
                self.removed_fields(frame, |k| m.contains_key(k));
            }
            Value::Array(a) if a.is_empty() => {
                // An empty list says nothing; what it replaced may have been removed.
                if let Some(o) = old {
                    self.removed_items(o, obj);
                }
            }
            Value::Array(a) => self.extra_list(obj, a, old),
            leaf => self.file(leaf, old),
        }
    }

    /// A list Git does not set.
    fn extra_list(&mut self, node: &'a Value, a: &'a [Value], old_node: Option<&'a Value>) {
        let old = old_node.and_then(Value::as_array);
        let frame = Frame {
            obj: Some(node),
            git: None,
            old: old_node,
        };
        match schema::list_kind(self.kind, &self.path) {
            ListKind::Keyed(keys) if let Some((items, present)) = keys_of(a, keys) => {
                let in_old = old.map(|l| index_by_key(l, keys));
                for (item, key) in a.iter().zip(&items) {
                    let old_i = in_old.as_ref().and_then(|m| m.get(&key.text).copied());
                    self.down(key.seg(keys), frame, |w| w.extra_whole(item, old_i));
                }
                if let Some(in_old) = &in_old {
                    for (text, item) in in_old {
                        if !present.contains_key(text.as_ref()) {
                            let item: &'a Value = item;
                            self.down(item_seg(item, keys), frame, |w| w.removed(item));
                        }
                    }
                }
            }
            ListKind::Set => {
                let unused = multiset(a);
                self.set_rest(frame, a, &unused, &[], old);
            }
            // An atomic list is one value: reported whole, unless an allowance names
            // something inside it.
            _ if self.mutations.is_empty() => self.file(node, old_node),
            _ => {
                for (j, item) in a.iter().enumerate() {
                    let oldj = old.and_then(|l| l.get(j));
                    self.down(Seg::Index(j), frame, |w| w.extra(item, oldj));
                }
            }
        }
    }

    /// A list item (keyed or of a set) Git does not hold: explained as a whole, or reported
    /// once by its own path.
    fn extra_whole(&mut self, item: &'a Value, old: Option<&'a Value>) {
        if item.is_null() || self.owned(item, old) || self.explained_default(item, old) {
            return;
        }
        self.file(item, old);
    }

    /// Files an unexplained value: drift when this UPDATE changed it or when only a hand
    /// writes it (a label, annotation or data key at CREATE); unattested otherwise.
    fn file(&mut self, value: &Value, old: Option<&Value>) {
        let changed = self.update && !old.is_some_and(|o| self.leaf_same(o, value));
        if changed || (!self.update && schema::never_defaulted(self.kind, &self.path)) {
            self.differ();
        } else {
            self.unattested();
        }
    }

    // --- removals -----------------------------------------------------------------------

    /// The old object's fields at this level that neither the object nor Git holds.
    fn removed_fields(&mut self, frame: Frame<'a>, kept: impl Fn(&str) -> bool) {
        let Some(Value::Object(old)) = frame.old else {
            return;
        };
        for (k, oldv) in old {
            if !kept(k) {
                self.down(Self::field(k), frame, |w| w.removed(oldv));
            }
        }
    }

    /// The old items of a list the object now holds empty (or not at all).
    fn removed_items(&mut self, old: &'a Value, node: &'a Value) {
        let Some(items) = old.as_array() else {
            return self.removed(old);
        };
        let frame = Frame {
            obj: Some(node),
            git: None,
            old: Some(old),
        };
        for (i, item) in items.iter().enumerate() {
            self.down(Seg::Index(i), frame, |w| w.removed(item));
        }
    }

    /// This UPDATE removed `old` at the current path, and Git does not set it: the object ends
    /// at Git's value (nothing), which is drift only when `old` is what the API server writes
    /// there and keeps (a storage-protection finalizer, a built-in controller's annotation).
    /// An allocated value may go (Git dropping an `ingressClassName` the admission plugin
    /// chose).
    fn removed(&mut self, old: &'a Value) {
        if !self.update || old.is_null() || !self.defaults || self.owned_removal() {
            return;
        }
        match self.default_of(old, false) {
            Some(Defaulted::Exact | Defaulted::Later) => {
                self.differ();
                return;
            }
            // A picked value vanishes only when Git changed it.
            Some(Defaulted::Picked(_)) => {
                if !self.others_set() {
                    self.differ();
                }
                return;
            }
            _ => {}
        }
        match old {
            Value::Object(m) => {
                let frame = Frame {
                    obj: None,
                    git: None,
                    old: Some(old),
                };
                for (k, v) in m {
                    self.down(Self::field(k), frame, |w| w.removed(v));
                }
            }
            Value::Array(items) => {
                let frame = Frame {
                    obj: None,
                    git: None,
                    old: Some(old),
                };
                for (i, item) in items.iter().enumerate() {
                    self.down(Seg::Index(i), frame, |w| w.removed(item));
                }
            }
            _ => {}
        }
    }
}

/// Whether the path is a volume's source (`...volumes[name=x].emptyDir`).
fn path_ends_with_volume_source(path: &[Seg]) -> bool {
    let n = path.len();
    n >= 3 && path[n - 3].field() == Some("volumes") && path[n - 2].is_item()
}

/// The merge key of a list item, or `None` when it has not got one.
fn key_of(item: &Value, keys: Keys) -> Option<Key<'_>> {
    let fields = item.as_object()?;
    // The usual case, one key field holding a string: its text is the key, borrowed. (Other
    // values start with NUL, which no name holds, so the two never meet.)
    if let [(field, default)] = keys {
        return match fields.get(*field).filter(|v| !v.is_null()) {
            Some(Value::String(s)) => Some(Key {
                text: Cow::Borrowed(s.as_str()),
                item,
            }),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                let mut text = String::from('\u{0}');
                write_canonical(v, &mut text);
                Some(Key {
                    text: Cow::Owned(text),
                    item,
                })
            }
            Some(_) => None,
            None => Some(Key {
                text: Cow::Borrowed((*default)?),
                item,
            }),
        };
    }
    let mut text = String::from('\u{0}');
    for (field, default) in keys {
        let default = default.map(|d| Value::String(d.into()));
        let v = fields
            .get(*field)
            .filter(|v| !v.is_null())
            .or(default.as_ref())?;
        if v.is_object() || v.is_array() {
            return None;
        }
        write_canonical(v, &mut text);
        text.push('\u{0}');
    }
    Some(Key {
        text: Cow::Owned(text),
        item,
    })
}

/// Keys of all items and their positions by key, when every item has one and none repeats
/// (otherwise the list is matched by position).
#[allow(clippy::type_complexity)]
fn keys_of(list: &[Value], keys: Keys) -> Option<(Vec<Key<'_>>, HashMap<Cow<'_, str>, usize>)> {
    let all: Vec<Key> = list
        .iter()
        .map(|i| key_of(i, keys))
        .collect::<Option<_>>()?;
    let mut positions = HashMap::with_capacity(all.len());
    for (i, k) in all.iter().enumerate() {
        // A borrowed text is copied as a pointer; an owned one (several key fields) is short.
        if positions.insert(k.text.clone(), i).is_some() {
            return None;
        }
    }
    Some((all, positions))
}

/// The items of an old list by key (the first of a repeated key).
fn index_by_key(list: &[Value], keys: Keys) -> HashMap<Cow<'_, str>, &Value> {
    let mut map = HashMap::with_capacity(list.len());
    for item in list {
        if let Some(key) = key_of(item, keys) {
            map.entry(key.text).or_insert(item);
        }
    }
    map
}

/// Positions of a list's items by canonical text.
fn multiset(list: &[Value]) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        map.entry(canonical(item)).or_default().push(i);
    }
    for positions in map.values_mut() {
        positions.reverse();
    }
    map
}

/// Takes the first unused position of an item with this canonical text.
fn take(map: &mut HashMap<String, Vec<usize>>, text: &str) -> Option<usize> {
    map.get_mut(text).and_then(Vec::pop)
}
