//! The traceability match: does the object the API server sends an admission webhook carry, field
//! for field, the manifest that Git holds for it?
//!
//! [`compare`] is a pure function of the Git manifest, the object, the old object (at UPDATE) and
//! the configured controller stamps. It returns a [`Status`], the paths where the object differs
//! from Git (`differing`), and the paths the object sets that Git does not (`unattested`), of
//! which `security_relevant` are the ones the built-in provenance policy refuses. Paths use the
//! syntax of [`super::path`] (`spec.template.spec.containers[name=web].image`). Finding the
//! manifest (identity, the approved window) and exemptions are decided elsewhere.
//!
//! # The rules
//!
//! The API server never hands a webhook what Git says: it fills in defaults, allocates IPs and
//! ports, adds a token volume and tolerations to a Pod, stamps metadata, and writes quantities in
//! canonical form. Each rule below is exact for what the API server really does (see
//! `fixtures/admission-v1/`), and each errs on the side of reporting what it cannot explain.
//!
//! 1. **Every field Git sets must be in the object with the same value**, or the object is
//!    [`Status::Modified`] with that path in `differing`. Values compare after the API server's
//!    canonical forms: quantities as `resource.Quantity` writes them, in quantity fields only
//!    ([`super::quantity`], [`super::schema::is_quantity`]); numbers by value (`2` = `2.0`); a
//!    file mode Git holds as `644` (YAML 1.1 octal `0644` read by a YAML 1.2 parser) also equals
//!    `420`. Lists match by their Kubernetes merge key (containers, env and volumes by `name`,
//!    container ports by `containerPort`+`protocol`, volume mounts by `mountPath`, ...), as sets
//!    (tolerations, finalizers), or by position (everything else, where Git's list is one value
//!    and must match in length). A Git `null`, `{}` or `[]` attests nothing beyond "absent or
//!    empty" (Go drops empty `omitempty` maps and lists; a volume source such as `emptyDir: {}`
//!    is the exception and must be there), and a Git zero (`false`, `0`, `""`) equals absence except in the few fields where
//!    absence means something else ([`super::schema::zero_is_absence`]), because Go's JSON
//!    encoder drops `omitempty` zeros. Git's `status`, server metadata and identity are not
//!    compared. A Secret's `stringData` is folded into `data` first, as the API server does.
//! 2. **Fields the object carries and Git does not** are, in order:
//!    - not part of the match when they are the API server's: `status`, `uid`,
//!      `resourceVersion`, `generation`, `creationTimestamp`, `managedFields`, ..., the
//!      last-applied annotation, `deployment.kubernetes.io/revision`, a Namespace's
//!      `kubernetes.io/metadata.name` label, and the configured controller stamps (label and
//!      annotation prefixes on the object's metadata);
//!    - silently allowed when they are an API-server default ([`super::schema::default_at`]):
//!      exact (path, value) pairs such as `terminationMessagePath: /dev/termination-log`,
//!      `protocol: TCP`, `revisionHistoryLimit: 10`, or allocated values such as a Service's
//!      `clusterIP`;
//!    - at UPDATE, **drift** (`differing`, [`Status::Modified`]) when their value differs from
//!      `oldObject`'s: what an UPDATE changes must be attested by Git (a change that *removes* a
//!      field Git does not set brings the object closer to Git and is allowed);
//!    - **drift at CREATE too** when they are a label, an annotation, or a ConfigMap or Secret
//!      data key: the API server never defaults those, so one that Git does not set was put
//!      there by hand;
//!    - otherwise **unattested**: listed, not a mismatch. At CREATE the API server's defaults
//!      cannot be told from hand-typed values without a full copy of its defaulting code, so an
//!      unknown extra is reported rather than refused; at UPDATE an unchanged extra was
//!      admitted earlier (an exempt controller, break-glass) and this request does not change
//!      it. The ones in `security_relevant` (`privileged: true`, a `hostPath`, `hostNetwork`,
//!      `runAsUser: 0`, added capabilities, ...) are never defaults; the built-in provenance
//!      policy refuses them. The status stays [`Status::Traceable`] for them, so that the
//!      refusal is a policy with a name and an enforcement action users can tune (a mesh that
//!      injects `NET_ADMIN` can set it to `warn`), rather than a hard-coded verdict.
//! 3. **A `Scale`** (the `scale` subresource, `kubectl scale`, an autoscaler) carries only
//!    `spec.replicas` of the object it scales; it is compared with Git's `spec.replicas` (the
//!    scaled kind's path, which is also the Scale's), and nothing else of the manifest.
//!    Defaults do not apply: a Scale request is always someone's explicit choice.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use super::path::{self, Seg, render};
use super::quantity;
use super::schema::{self, Defaulted, ListKind};

/// The configured GitOps-controller stamps (`provenance.controllerStamps`): labels and
/// annotations whose key starts with one of these prefixes are the controller's, never Git's.
/// A prefix is matched literally: end it with `/` (`kustomize.toolkit.fluxcd.io/`) so that a
/// look-alike domain (`kustomize.toolkit.fluxcd.io.evil/`) does not pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchOptions {
    pub label_prefixes: Vec<String>,
    pub annotation_prefixes: Vec<String>,
}

impl From<&crate::config::ControllerStamps> for MatchOptions {
    fn from(stamps: &crate::config::ControllerStamps) -> Self {
        MatchOptions {
            label_prefixes: stamps.label_prefixes.clone(),
            annotation_prefixes: stamps.annotation_prefixes.clone(),
        }
    }
}

/// The verdict of the match. (`untraceable` and `exempt` are decided before a match: no
/// manifest in the window, or an exemption.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every field Git sets is in the object with Git's value, and nothing else is drift.
    Traceable,
    /// Some field differs from Git, or was changed or hand-added where Git says nothing.
    Modified,
}

/// The result of [`compare`], in the shape `input.provenance` gives it to policies
/// (`status`, `differing`, `unattested`, `securityRelevant`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub status: Status,
    /// Paths where the object differs from Git, or that this UPDATE changed without Git, or a
    /// label, annotation or data key Git does not set. Non-empty exactly when `Modified`.
    /// (All three lists are sorted.)
    pub differing: Vec<String>,
    /// Paths the object sets that Git does not, other than the API server's own fields and
    /// known defaults.
    pub unattested: Vec<String>,
    /// The unattested paths that no API-server default sets and that widen what a workload can
    /// do on its node (refused by the built-in provenance policy).
    pub security_relevant: Vec<String>,
}

/// Compares the manifest `git` with the `object` of an admission request (and `old_object` at
/// UPDATE). See the module documentation for the rules.
pub fn compare(
    git: &Value,
    object: &Value,
    old_object: Option<&Value>,
    options: &MatchOptions,
) -> Outcome {
    let object_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let git_kind = git.get("kind").and_then(Value::as_str).unwrap_or("");
    let scale = object_kind == "Scale"
        && git_kind != "Scale"
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("autoscaling/"));
    let git: Cow<'_, Value> = if scale {
        Cow::Owned(scale_view(git))
    } else {
        normalize(git_kind, git)
    };
    let mut walker = Walker {
        kind: object_kind.to_string(),
        root: object,
        options,
        update: old_object.is_some(),
        defaults: !scale,
        path: Vec::new(),
        differing: Vec::new(),
        unattested: Vec::new(),
        security_relevant: Vec::new(),
    };
    walker.attested(&git, Some(object), old_object);
    // Sorted, so that the outcome does not depend on the key order of the manifest.
    walker.differing.sort();
    walker.unattested.sort();
    walker.security_relevant.sort();
    Outcome {
        status: if walker.differing.is_empty() {
            Status::Traceable
        } else {
            Status::Modified
        },
        differing: walker.differing,
        unattested: walker.unattested,
        security_relevant: walker.security_relevant,
    }
}

/// What a `Scale` can say about a manifest: its `spec.replicas`.
fn scale_view(git: &Value) -> Value {
    match git.pointer("/spec/replicas") {
        Some(r) if !r.is_null() => serde_json::json!({"spec": {"replicas": r}}),
        _ => serde_json::json!({}),
    }
}

/// Git's manifest as the API server would store it, where that differs by more than defaults:
/// a Secret's `stringData` is written into `data` (base64, winning over `data`); a Service's
/// empty `clusterIP` and zero node ports mean "allocate one"; a Job without labels of its own
/// gets its pod template's (`SetDefaults_Job`; the labels the Job strategy then generates are
/// in [`schema::default_at`]).
/// Other kinds are compared as written (borrowed: no copy on the request path).
fn normalize<'a>(kind: &str, git: &'a Value) -> Cow<'a, Value> {
    if kind != "Secret" && kind != "Service" && kind != "Job" {
        return Cow::Borrowed(git);
    }
    let mut git = git.clone();
    match kind {
        "Secret" => {
            if let Some(obj) = git.as_object_mut()
                && let Some(Value::Object(string_data)) = obj.remove("stringData")
            {
                let data = obj
                    .entry("data")
                    .or_insert_with(|| Value::Object(Map::new()));
                if data.is_null() {
                    *data = Value::Object(Map::new());
                }
                if let Some(data) = data.as_object_mut() {
                    for (k, v) in string_data {
                        if let Some(s) = v.as_str() {
                            data.insert(k, Value::String(base64(s.as_bytes())));
                        }
                    }
                }
            }
        }
        "Service" => {
            if let Some(spec) = git.get_mut("spec").and_then(Value::as_object_mut) {
                if spec.get("clusterIP").is_some_and(|v| v == "") {
                    spec.remove("clusterIP");
                }
                if spec.get("healthCheckNodePort").is_some_and(is_zero) {
                    spec.remove("healthCheckNodePort");
                }
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        if port.get("nodePort").is_some_and(is_zero) {
                            port.remove("nodePort");
                        }
                    }
                }
            }
        }
        "Job" => {
            let template_labels = git.pointer("/spec/template/metadata/labels").cloned();
            let own_empty = git
                .pointer("/metadata/labels")
                .is_none_or(|l| l.as_object().is_none_or(Map::is_empty));
            if let Some(labels @ Value::Object(_)) = template_labels
                && own_empty
                && let Some(metadata) = git.get_mut("metadata").and_then(Value::as_object_mut)
            {
                metadata.insert("labels".into(), labels);
            }
        }
        _ => {}
    }
    Cow::Owned(git)
}

fn is_zero(v: &Value) -> bool {
    v.as_f64() == Some(0.0)
}

/// Standard base64 with padding (what the API server writes for `data`).
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Equality of two JSON values as the API server means it: numbers by value (`2` = `2.0`),
/// everything else structurally. (Quantities are compared by the walker, which knows the path.)
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

fn same_number(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a == b;
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a == b;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

struct Walker<'a> {
    kind: String,
    /// The object, for defaults that depend on a sibling (a container's image).
    root: &'a Value,
    options: &'a MatchOptions,
    update: bool,
    /// Off for a Scale.
    defaults: bool,
    path: Vec<Seg<'a>>,
    differing: Vec<String>,
    unattested: Vec<String>,
    security_relevant: Vec<String>,
}

fn push_unique(list: &mut Vec<String>, path: String) {
    if !list.contains(&path) {
        list.push(path);
    }
}

impl<'a> Walker<'a> {
    fn differ(&mut self) {
        let p = render(&self.path);
        push_unique(&mut self.differing, p);
    }

    fn differ_at(&mut self, seg: Seg<'a>) {
        self.path.push(seg);
        self.differ();
        self.path.pop();
    }

    /// Rule 1: `git` sets this path; the object must hold the same value. `obj` and `old` are the
    /// object's and the old object's values at the same path.
    fn attested(&mut self, git: &'a Value, obj: Option<&'a Value>, old: Option<&'a Value>) {
        if schema::git_skips(&self.path) {
            return;
        }
        let obj = obj.filter(|v| !v.is_null());
        let old = old.filter(|v| !v.is_null());
        match (git, obj) {
            (Value::Null, Some(o)) => self.extra(o, old),
            (Value::Null, None) => {}
            (Value::Object(g), Some(Value::Object(o))) => {
                for (k, gv) in g {
                    self.path.push(Seg::Field(Cow::Borrowed(k.as_str())));
                    self.attested(gv, o.get(k), old.and_then(|x| x.get(k)));
                    self.path.pop();
                }
                for (k, ov) in o {
                    if !g.contains_key(k) {
                        self.path.push(Seg::Field(Cow::Borrowed(k.as_str())));
                        self.extra(ov, old.and_then(|x| x.get(k)));
                        self.path.pop();
                    }
                }
            }
            (Value::Object(g), None) => {
                // `emptyDir: {}` is a volume's one source: the API server keeps it, and its
                // absence means another source took its place.
                if g.is_empty() && path::ends_with(&self.path, &["volumes", "[]", "*"]) {
                    self.differ();
                }
                for (k, gv) in g {
                    self.path.push(Seg::Field(Cow::Borrowed(k.as_str())));
                    self.attested(gv, None, None);
                    self.path.pop();
                }
            }
            (Value::Array(g), Some(Value::Array(o))) => {
                self.list(g, o, old.and_then(Value::as_array))
            }
            (Value::Array(g), None) => self.list(g, &[], None),
            (Value::Object(_) | Value::Array(_), Some(_)) => self.differ(),
            (scalar, Some(o)) => {
                if !self.leaf_equal(scalar, o) {
                    self.differ();
                }
            }
            (scalar, None) => {
                if !schema::zero_is_absence(&self.path, scalar) {
                    self.differ();
                }
            }
        }
    }

    /// Whether a Git scalar equals the object's value at the current path.
    fn leaf_equal(&self, git: &Value, obj: &Value) -> bool {
        if same_value(git, obj) {
            return true;
        }
        if schema::is_quantity(&self.kind, &self.path)
            && let Some(same) = quantity::same(git, obj)
        {
            return same;
        }
        if schema::is_file_mode(&self.path)
            && let (Some(g), Some(o)) = (git.as_f64(), obj.as_u64())
        {
            // `0644` read as 644 by a YAML 1.2 parser: the API server received 420. A decimal
            // 644 would be refused (modes stop at 0777), so the octal reading is the only one
            // that can have reached the API server.
            if g.fract() == 0.0 && g > 0.0 && g < 1e9 {
                let digits = (g as u64).to_string();
                if digits.bytes().all(|d| d < b'8')
                    && u64::from_str_radix(&digits, 8).ok() == Some(o)
                {
                    return true;
                }
            }
        }
        false
    }

    /// The merge key of a list item, or `None` when it has not got one.
    fn key_of(
        item: &Value,
        keys: &'static [(&'static str, Option<&'static str>)],
    ) -> Option<Vec<(String, Value)>> {
        let item = item.as_object()?;
        keys.iter()
            .map(|(field, default)| {
                let v = item
                    .get(*field)
                    .filter(|v| !v.is_null())
                    .cloned()
                    .or_else(|| default.map(|d| Value::String(d.into())))?;
                (!v.is_object() && !v.is_array()).then(|| (field.to_string(), v))
            })
            .collect()
    }

    fn same_key(a: &[(String, Value)], b: &[(String, Value)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((fa, va), (fb, vb))| fa == fb && same_value(va, vb))
    }

    /// Keys of all items, when every item has one and none repeats.
    fn keys_of(
        list: &[Value],
        keys: &'static [(&'static str, Option<&'static str>)],
    ) -> Option<Vec<Vec<(String, Value)>>> {
        let all: Vec<_> = list
            .iter()
            .map(|i| Self::key_of(i, keys))
            .collect::<Option<_>>()?;
        for (i, k) in all.iter().enumerate() {
            if all[..i].iter().any(|other| Self::same_key(k, other)) {
                return None;
            }
        }
        Some(all)
    }

    fn find_by_key<'v>(
        list: Option<&'v Vec<Value>>,
        key: &[(String, Value)],
        keys: &'static [(&'static str, Option<&'static str>)],
    ) -> Option<&'v Value> {
        list?
            .iter()
            .find(|item| Self::key_of(item, keys).is_some_and(|k| Self::same_key(&k, key)))
    }

    /// Rule 1 for a list Git sets.
    fn list(&mut self, g: &'a [Value], o: &'a [Value], old: Option<&'a Vec<Value>>) {
        let kind = schema::list_kind(&self.kind, &self.path);
        if let ListKind::Keyed(keys) = kind
            && let (Some(gk), Some(ok)) = (Self::keys_of(g, keys), Self::keys_of(o, keys))
        {
            let mut positions = Vec::new();
            for (gi, key) in g.iter().zip(&gk) {
                let found = ok.iter().position(|k| Self::same_key(k, key));
                self.path.push(Seg::Key(key.clone()));
                match found {
                    Some(j) => {
                        positions.push(j);
                        let old_item = Self::find_by_key(old, key, keys);
                        self.attested(gi, Some(&o[j]), old_item);
                    }
                    None => self.differ(),
                }
                self.path.pop();
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
            for (item, key) in o.iter().zip(ok) {
                if !gk.iter().any(|k| Self::same_key(k, &key)) {
                    let old_item = Self::find_by_key(old, &key, keys);
                    self.path.push(Seg::Key(key));
                    self.extra_item(item, old_item, keys);
                    self.path.pop();
                }
            }
            return;
        }
        match kind {
            ListKind::Set => {
                let mut used = vec![false; o.len()];
                for (i, gi) in g.iter().enumerate() {
                    if gi.is_null() {
                        continue;
                    }
                    match (0..o.len()).find(|&j| !used[j] && same_value(gi, &o[j])) {
                        Some(j) => used[j] = true,
                        None => self.differ_at(Seg::Index(i)),
                    }
                }
                for (j, item) in o.iter().enumerate() {
                    if !used[j] {
                        let old_item = old.and_then(|l| l.iter().find(|x| same_value(x, item)));
                        self.path.push(Seg::Index(j));
                        self.extra(item, old_item);
                        self.path.pop();
                    }
                }
            }
            ListKind::Prefix => {
                for (i, gi) in g.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    match o.get(i) {
                        Some(oi) => self.attested(gi, Some(oi), old.and_then(|l| l.get(i))),
                        None => self.differ(),
                    }
                    self.path.pop();
                }
                for (j, item) in o.iter().enumerate().skip(g.len()) {
                    self.path.push(Seg::Index(j));
                    self.extra(item, old.and_then(|l| l.get(j)));
                    self.path.pop();
                }
            }
            // Atomic, or a keyed list whose items lack keys: Git's list is one value.
            _ => {
                for i in 0..g.len().max(o.len()) {
                    self.path.push(Seg::Index(i));
                    match (g.get(i), o.get(i)) {
                        (Some(gi), Some(oi)) => {
                            self.attested(gi, Some(oi), old.and_then(|l| l.get(i)))
                        }
                        _ => self.differ(),
                    }
                    self.path.pop();
                }
            }
        }
    }

    /// Rule 2 for a keyed list item the object has and Git does not: the item itself is reported
    /// once under its key path, then its other fields.
    fn extra_item(
        &mut self,
        item: &'a Value,
        old: Option<&'a Value>,
        keys: &'static [(&'static str, Option<&'static str>)],
    ) {
        if self.allowed_default(item, old) {
            return;
        }
        self.report(item, self.update && old.is_none());
        if let Some(fields) = item.as_object() {
            for (k, v) in fields {
                if keys.iter().any(|(key, _)| key == k) {
                    continue;
                }
                self.path.push(Seg::Field(Cow::Borrowed(k.as_str())));
                self.extra(v, old.and_then(|x| x.get(k)));
                self.path.pop();
            }
        }
    }

    /// Whether `obj` (at the current path, Git silent) is an API-server default that this
    /// request may carry.
    fn allowed_default(&self, obj: &Value, old: Option<&Value>) -> bool {
        if !self.defaults {
            return false;
        }
        match schema::default_at(&self.kind, &self.path, obj, self.root) {
            Some(Defaulted::Exact) => true,
            Some(Defaulted::Allocated) => {
                !self.update || old.is_none_or(|o| self.leaf_same(o, obj))
            }
            None => false,
        }
    }

    fn leaf_same(&self, a: &Value, b: &Value) -> bool {
        same_value(a, b)
            || (schema::is_quantity(&self.kind, &self.path) && quantity::same(a, b) == Some(true))
    }

    /// Rule 2: the object carries `obj` at the current path and Git does not.
    fn extra(&mut self, obj: &'a Value, old: Option<&'a Value>) {
        if obj.is_null()
            || schema::server_owned(
                &self.kind,
                &self.path,
                &self.options.label_prefixes,
                &self.options.annotation_prefixes,
            )
        {
            return;
        }
        let old = old.filter(|v| !v.is_null());
        if self.allowed_default(obj, old) {
            return;
        }
        match obj {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    self.path.push(Seg::Field(Cow::Borrowed(k.as_str())));
                    self.extra(v, old.and_then(|x| x.get(k)));
                    self.path.pop();
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let old_list = old.and_then(Value::as_array);
                match schema::list_kind(&self.kind, &self.path) {
                    ListKind::Keyed(keys) if Self::keys_of(a, keys).is_some() => {
                        for item in a {
                            let Some(key) = Self::key_of(item, keys) else {
                                continue;
                            };
                            let old_item = Self::find_by_key(old_list, &key, keys);
                            self.path.push(Seg::Key(key));
                            self.extra_item(item, old_item, keys);
                            self.path.pop();
                        }
                    }
                    ListKind::Set => {
                        for (j, item) in a.iter().enumerate() {
                            let old_item =
                                old_list.and_then(|l| l.iter().find(|x| same_value(x, item)));
                            self.path.push(Seg::Index(j));
                            self.extra(item, old_item);
                            self.path.pop();
                        }
                    }
                    _ => {
                        for (j, item) in a.iter().enumerate() {
                            self.path.push(Seg::Index(j));
                            self.extra(item, old_list.and_then(|l| l.get(j)));
                            self.path.pop();
                        }
                    }
                }
            }
            leaf => {
                let changed = self.update && !old.is_some_and(|o| self.leaf_same(o, leaf));
                self.report(leaf, changed);
            }
        }
    }

    /// Files a value Git does not set: drift when this UPDATE changed it or when it can only
    /// have been written by hand (labels, annotations, data at CREATE); unattested otherwise.
    fn report(&mut self, value: &Value, changed: bool) {
        if changed || (!self.update && schema::never_defaulted(&self.kind, &self.path)) {
            self.differ();
            return;
        }
        let p = render(&self.path);
        if schema::security_relevant(&self.path, value) {
            push_unique(&mut self.security_relevant, p.clone());
        }
        push_unique(&mut self.unattested, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none() -> MatchOptions {
        MatchOptions::default()
    }

    #[test]
    fn base64_matches_the_api_server() {
        assert_eq!(base64(b"s3cr3t"), "czNjcjN0");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn secret_string_data() {
        let git = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-pass", "namespace": "demo"},
            "stringData": {"password": "s3cr3t"}});
        let obj = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-pass", "namespace": "demo", "uid": "x"},
            "data": {"password": "czNjcjN0"}, "type": "Opaque"});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        assert!(out.unattested.is_empty(), "{out:?}");
        let tampered = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-pass", "namespace": "demo"},
            "data": {"password": "czNjcjN0", "extra": "eA=="}, "type": "Opaque"});
        let out = compare(&git, &tampered, None, &none());
        assert_eq!(out.differing, vec!["data.extra"]);
    }

    #[test]
    fn zero_values_and_empties() {
        let git = json!({"kind": "Pod", "spec": {"hostNetwork": false, "containers": [
            {"name": "a", "image": "x:1", "args": [], "env": []}],
            "automountServiceAccountToken": false}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}],
            "automountServiceAccountToken": false}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.differing, vec!["spec.automountServiceAccountToken"]);
    }

    #[test]
    fn empty_dir_must_stay() {
        let git = json!({"kind": "Pod", "spec": {"volumes": [{"name": "c", "emptyDir": {}}],
            "nodeSelector": {}}});
        let obj = json!({"kind": "Pod", "spec": {"volumes": [{"name": "c", "emptyDir": {}}]}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"volumes": [
            {"name": "c", "secret": {"secretName": "s"}}]}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.differing, vec!["spec.volumes[name=c].emptyDir"]);
    }

    #[test]
    fn file_mode_octal() {
        let git = json!({"kind": "Pod", "spec": {"volumes": [
            {"name": "c", "configMap": {"name": "c", "defaultMode": 644.0}}]}});
        let obj = json!({"kind": "Pod", "spec": {"volumes": [
            {"name": "c", "configMap": {"name": "c", "defaultMode": 420}}]}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"volumes": [
            {"name": "c", "configMap": {"name": "c", "defaultMode": 511}}]}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Modified);
    }

    #[test]
    fn lists() {
        // Atomic lists: Git owns the whole value.
        let git = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "args": ["1", "2"]}]}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "args": ["1", "2", "3"]}]}});
        assert_eq!(
            compare(&git, &obj, None, &none()).differing,
            vec!["spec.containers[name=a].args[2]"]
        );
        // Keyed lists: order of containers does not matter, order of env does.
        let git = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"},
                                                  {"name": "B", "value": "$(A)"}]},
            {"name": "b", "image": "y:1"}]}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "b", "image": "y:1"},
            {"name": "a", "image": "x:1", "env": [{"name": "A", "value": "1"},
                                                  {"name": "B", "value": "$(A)"}]}]}});
        assert_eq!(compare(&git, &obj, None, &none()).status, Status::Traceable);
        let obj = json!({"kind": "Pod", "spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "B", "value": "$(A)"},
                                                  {"name": "A", "value": "1"}]},
            {"name": "b", "image": "y:1"}]}});
        assert_eq!(
            compare(&git, &obj, None, &none()).differing,
            vec!["spec.containers[name=a].env"]
        );
        // A missing keyed item.
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "b", "image": "y:1"}]}});
        assert_eq!(
            compare(&git, &obj, None, &none()).differing,
            vec!["spec.containers[name=a]"]
        );
    }

    #[test]
    fn capabilities_added_at_create_are_security_relevant() {
        let git = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        let obj = json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "x:1",
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}, "privileged": true}}]}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.status, Status::Traceable);
        assert_eq!(
            out.security_relevant,
            vec![
                "spec.containers[name=a].securityContext.capabilities.add[0]",
                "spec.containers[name=a].securityContext.privileged"
            ]
        );
        // The same change at UPDATE is drift.
        let old = git.clone();
        let out = compare(&git, &obj, Some(&old), &none());
        assert_eq!(out.status, Status::Modified);
        assert_eq!(out.differing.len(), 2, "{out:?}");
    }

    #[test]
    fn removing_what_git_does_not_set_is_allowed() {
        let git = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let old = json!({"kind": "ConfigMap", "metadata": {"name": "c",
            "labels": {"hand": "x"}}, "data": {"a": "1"}});
        let obj = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let out = compare(&git, &obj, Some(&old), &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        // An unchanged hand label at UPDATE is reported, not drift.
        let out = compare(&git, &old, Some(&old), &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        assert_eq!(out.unattested, vec!["metadata.labels.hand"]);
        // At CREATE it is drift.
        let out = compare(&git, &old, None, &none());
        assert_eq!(out.differing, vec!["metadata.labels.hand"]);
    }

    #[test]
    fn exact_default_restored_when_git_drops_a_field() {
        let git = json!({"kind": "Deployment", "spec": {"selector": {}}});
        let old = json!({"kind": "Deployment", "spec": {"replicas": 3, "selector": {}}});
        let obj = json!({"kind": "Deployment", "spec": {"replicas": 1, "selector": {}}});
        assert_eq!(
            compare(&git, &obj, Some(&old), &none()).status,
            Status::Traceable
        );
        let obj = json!({"kind": "Deployment", "spec": {"replicas": 4, "selector": {}}});
        assert_eq!(
            compare(&git, &obj, Some(&old), &none()).differing,
            vec!["spec.replicas"]
        );
    }

    #[test]
    fn job_defaults_follow_their_siblings() {
        let git = json!({"kind": "Job", "metadata": {"name": "j"}, "spec": {
            "podFailurePolicy": {"rules": []}, "backoffLimitPerIndex": 1,
            "template": {"spec": {"restartPolicy": "Never"}}}});
        let obj = json!({"kind": "Job", "metadata": {"name": "j", "uid": "u"}, "spec": {
            "podFailurePolicy": {"rules": []}, "backoffLimitPerIndex": 1,
            "backoffLimit": 2147483647, "podReplacementPolicy": "Failed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
            "template": {"metadata": {"labels": {"job-name": "j", "controller-uid": "u"}},
                         "spec": {"restartPolicy": "Never"}}}});
        let out = compare(&git, &obj, None, &none());
        assert_eq!(out.status, Status::Traceable, "{out:?}");
        assert!(out.unattested.is_empty(), "{out:?}");
        let mut other = obj.clone();
        other["spec"]["podReplacementPolicy"] = json!("TerminatingOrFailed");
        other["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] = json!("v");
        let out = compare(&git, &other, None, &none());
        assert_eq!(
            out.unattested,
            vec![
                "spec.podReplacementPolicy",
                "spec.selector.matchLabels[\"batch.kubernetes.io/controller-uid\"]"
            ]
        );
    }

    #[test]
    fn outcome_serializes_for_policies() {
        let out = Outcome {
            status: Status::Modified,
            differing: vec!["spec.replicas".into()],
            unattested: vec![],
            security_relevant: vec![],
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"status": "modified", "differing": ["spec.replicas"], "unattested": [],
                   "securityRelevant": []})
        );
    }
}
