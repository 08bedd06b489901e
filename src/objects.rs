//! The objects of manifest files, read below `check` and `provenance` alike: each file's
//! objects with their line ([`read_file_objects`]), their scope and namespace as the API
//! server gives them ([`Scopes`], [`default_namespaces`]); and what a pull request changes,
//! object by object ([`diff`]): the objects at the base and at the head, matched by identity
//! (group, kind, namespace, name) rather than by path, so that moving an object between files
//! is an UPDATE, or nothing when it is unchanged.

use std::collections::BTreeMap;

use kube_core::admission::Operation;
use serde_json::Value;

use crate::input::{Identity, gvk_of};
use crate::manifest;

/// One object of one file, as read.
#[derive(Debug, Clone)]
pub struct FileObject {
    pub path: String,
    pub line: usize,
    pub object: Value,
    /// The line of each field, to point findings at the field they are about.
    pub lines: manifest::Lines,
}

/// Something in a changed file (or the pull request) that is not a checkable object.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub path: String,
    pub line: usize,
    pub message: String,
    pub kind: NoteKind,
}

/// What a note means for the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Informational: a document that is a mapping but not a Kubernetes object (a
    /// kustomization.yaml, a Helm values file).
    Info,
    /// The file could not be read (invalid YAML, an alias bomb, binary, over the limits, a
    /// document that is not a mapping): what it holds was not checked (exit 2).
    Unreadable,
    /// Rejects the pull request whatever the policies say (an unapproved commit).
    Rejects,
    /// Checked, but Git alone cannot say what will be applied (a chart that reads the
    /// cluster): a warning.
    Unverifiable,
}

/// A change to one object.
#[derive(Debug, Clone)]
pub struct Change {
    pub operation: Operation,
    /// The object at the head (CREATE, UPDATE).
    pub object: Option<Value>,
    /// The object at the base (UPDATE, DELETE).
    pub old_object: Option<Value>,
    /// Where the change is: the head's file and line, or the base's for a DELETE.
    pub path: String,
    pub line: usize,
    /// The line of each field of that manifest.
    pub lines: manifest::Lines,
    /// The rendered source (kustomization or chart folder) the object comes from, when it is
    /// rendered.
    pub rendered: Option<crate::input::Rendered>,
}

/// Kinds of the built-in API groups (and Gatekeeper's) that are cluster-scoped.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("policy", "PodSecurityPolicy"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("templates.gatekeeper.sh", "ConstraintTemplate"),
    ("constraints.gatekeeper.sh", "*"),
    ("internal.apiserver.k8s.io", "StorageVersion"),
    ("storagemigration.k8s.io", "StorageVersionMigration"),
];

/// Kinds of the built-in API groups that are namespaced. A kind in neither list (a custom
/// resource whose CustomResourceDefinition is not at hand) has no known scope: it is never
/// guessed.
const NAMESPACED: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "Endpoints"),
    ("", "PersistentVolumeClaim"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("", "PodTemplate"),
    ("", "Event"),
    ("", "Binding"),
    ("apps", "*"),
    ("batch", "*"),
    ("autoscaling", "*"),
    ("extensions", "*"),
    ("policy", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("coordination.k8s.io", "Lease"),
    ("coordination.k8s.io", "LeaseCandidate"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("storage.k8s.io", "CSIStorageCapacity"),
    ("resource.k8s.io", "ResourceClaim"),
    ("resource.k8s.io", "ResourceClaimTemplate"),
    ("authorization.k8s.io", "LocalSubjectAccessReview"),
];

/// Which kinds are cluster-scoped: the built-in lists plus the CRDs seen in the repository.
/// A custom resource's scope comes from its CRD; without one it is unknown, never guessed.
#[derive(Debug, Default, Clone)]
pub struct Scopes {
    /// group → kind → cluster-scoped, from CRDs.
    custom: BTreeMap<String, BTreeMap<String, bool>>,
}

impl Scopes {
    /// Learns the scope of custom resources from CustomResourceDefinitions.
    pub fn learn(&mut self, objects: &[FileObject]) {
        for o in objects {
            let v = &o.object;
            if v.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let group = v.pointer("/spec/group").and_then(Value::as_str);
            let kind = v.pointer("/spec/names/kind").and_then(Value::as_str);
            let scope = v.pointer("/spec/scope").and_then(Value::as_str);
            if let (Some(g), Some(k), Some(s)) = (group, kind, scope) {
                self.custom
                    .entry(g.to_string())
                    .or_default()
                    .insert(k.to_string(), s == "Cluster");
            }
        }
    }

    /// `Some(true)` for a cluster-scoped kind, `Some(false)` for a namespaced one, `None` when
    /// the scope is not known (a custom resource whose CRD was not seen).
    pub fn cluster_scoped(&self, group: &str, kind: &str) -> Option<bool> {
        if let Some(cluster) = self.custom.get(group).and_then(|kinds| kinds.get(kind)) {
            return Some(*cluster);
        }
        let listed = |list: &[(&str, &str)]| {
            list.iter()
                .any(|(g, k)| *g == group && (*k == kind || *k == "*"))
        };
        if listed(CLUSTER_SCOPED) {
            Some(true)
        } else if listed(NAMESPACED) {
            Some(false)
        } else {
            None
        }
    }
}

/// The note for a file that could not be read: at the error's line, the message without the
/// path and line the item carries anyway.
pub fn unreadable(path: &str, e: &manifest::ManifestError) -> Note {
    let line = e.line().unwrap_or(1).max(1);
    let text = e.to_string();
    let message = text
        .strip_prefix(&format!("{path}:{line}: "))
        .or_else(|| text.strip_prefix(&format!("{path}: ")))
        .unwrap_or(&text)
        .to_string();
    Note {
        path: path.to_string(),
        line,
        message,
        kind: NoteKind::Unreadable,
    }
}

/// Reads the objects of one file. A file that cannot be read (invalid YAML, binary, over the
/// limits) makes an unreadable note, and so does each document that is not a mapping (the
/// file's other documents are still checked); mappings that are not Kubernetes objects (a
/// kustomization.yaml) are skipped with a note. An empty document (`null`) is nothing.
pub fn read_file_objects(path: &str, bytes: &[u8]) -> (Vec<FileObject>, Vec<Note>) {
    read_objects(path, bytes, true)
}

/// [`read_file_objects`] without the line of each field ([`FileObject::lines`] empty):
/// the same objects and notes, read faster.
pub fn read_file_objects_unlined(path: &str, bytes: &[u8]) -> (Vec<FileObject>, Vec<Note>) {
    read_objects(path, bytes, false)
}

fn read_objects(path: &str, bytes: &[u8], lines: bool) -> (Vec<FileObject>, Vec<Note>) {
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    // A Git LFS pointer: what the file holds is stored outside Git; a controller with LFS
    // reads it, gitgate cannot.
    if bytes.starts_with(b"version https://git-lfs.github.com/spec/") {
        notes.push(Note {
            path: path.to_string(),
            line: 1,
            message: "not checked: a Git LFS pointer (the file's content is stored outside Git, where gitgate does not read it)".into(),
            kind: NoteKind::Unverifiable,
        });
        return (objects, notes);
    }
    let docs = match manifest::parse_bytes_with(path, bytes, lines) {
        Ok(docs) => manifest::expand_lists(docs),
        Err(e) => {
            notes.push(unreadable(path, &e));
            return (objects, notes);
        }
    };
    // What YAML readers read differently (a merge key, a tag outside the core schema) is not
    // read: the controller's reader and gitgate's would not agree on what the file says.
    if !path.ends_with(".json")
        && let Ok(text) = std::str::from_utf8(bytes)
        && let Some((line, what)) = manifest::disputed(text)
    {
        notes.push(Note {
            path: path.to_string(),
            line: line.max(1),
            message: format!(
                "cannot be checked: it uses {what}, which YAML readers read differently (kustomize, kubectl and Helm do not agree with gitgate on what it says); write the values out"
            ),
            kind: NoteKind::Unreadable,
        });
        return (objects, notes);
    }
    for doc in docs {
        if doc.value.is_null() {
            continue;
        }
        if let Err(e) = manifest::require_object(path, &doc) {
            notes.push(unreadable(path, &e));
            continue;
        }
        if Identity::of_object(&doc.value).is_none() {
            let what = match gvk_of(&doc.value) {
                Some(gvk) => format!("{} has no metadata.name", gvk.kind),
                None => "no apiVersion and kind".to_string(),
            };
            notes.push(Note {
                path: path.to_string(),
                line: doc.line,
                message: format!("skipped: not a Kubernetes object ({what})"),
                kind: NoteKind::Info,
            });
            continue;
        }
        objects.push(FileObject {
            path: path.to_string(),
            line: doc.line,
            object: doc.value,
            lines: doc.lines,
        });
    }
    (objects, notes)
}

/// Gives namespaced objects without a namespace the default one, as `kubectl apply -n` or a
/// GitOps controller's target namespace would, and takes the namespace off cluster-scoped
/// objects, as the API server does. An object whose kind has no known scope keeps what its
/// manifest says (no namespace when it sets none): it is never put into the default one.
pub fn default_namespaces(
    objects: &mut [FileObject],
    scopes: &Scopes,
    namespace: &str,
    source_namespace: Option<&str>,
) {
    for o in objects {
        let Some(gvk) = gvk_of(&o.object) else {
            continue;
        };
        let cluster = scopes.cluster_scoped(&gvk.group, &gvk.kind);
        let Some(meta) = o.object.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        match cluster {
            Some(false) => {}
            Some(true) => {
                meta.remove("namespace");
                continue;
            }
            // A kind of unknown scope takes its source's namespace when the source has one
            // (as Flux's `targetNamespace` does); otherwise it is left as written.
            None if source_namespace.is_none() => continue,
            None => {}
        }
        let namespace = match cluster {
            None => source_namespace.unwrap_or(namespace),
            _ => namespace,
        };
        let has = meta
            .get("namespace")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has {
            meta.insert("namespace".into(), Value::String(namespace.to_string()));
        }
    }
}

/// The key objects are matched by: group, kind, namespace, name (not the version, so that
/// moving to a new API version is an UPDATE).
fn key(o: &FileObject) -> Option<(String, String, Option<String>, String)> {
    Identity::of_object(&o.object).map(|id| (id.group, id.kind, id.namespace, id.name))
}

/// Pairs base and head objects by identity: head only → CREATE, both and different →
/// UPDATE, base only → DELETE. Changes come in head order, then deletions in base order.
pub fn diff(base: Vec<FileObject>, head: Vec<FileObject>) -> Vec<Change> {
    let mut base_by_key: BTreeMap<_, FileObject> = BTreeMap::new();
    let mut base_order = Vec::new();
    for o in base {
        if let Some(k) = key(&o) {
            base_order.push(k.clone());
            base_by_key.insert(k, o);
        }
    }
    let mut changes = Vec::new();
    for o in head {
        let Some(k) = key(&o) else { continue };
        match base_by_key.remove(&k) {
            None => changes.push(Change {
                operation: Operation::Create,
                object: Some(o.object),
                old_object: None,
                path: o.path,
                line: o.line,
                lines: o.lines,
                rendered: None,
            }),
            Some(old) if old.object == o.object => {} // unchanged, perhaps moved
            Some(old) => changes.push(Change {
                operation: Operation::Update,
                object: Some(o.object),
                old_object: Some(old.object),
                path: o.path,
                line: o.line,
                lines: o.lines,
                rendered: None,
            }),
        }
    }
    for k in base_order {
        if let Some(old) = base_by_key.remove(&k) {
            changes.push(Change {
                operation: Operation::Delete,
                object: None,
                old_object: Some(old.object),
                path: old.path,
                line: old.line,
                lines: old.lines,
                rendered: None,
            });
        }
    }
    changes
}

/// Changes diffed in separate groups (the plain manifests, each rendered source) joined: an
/// object deleted from one group and created in another moved (from a file into a
/// kustomization, say). That is one UPDATE at the CREATE's place, or nothing when the object
/// is the same, as a move between files is.
pub fn pair_moves(changes: Vec<Change>) -> Vec<Change> {
    let subject_key = |c: &Change| {
        c.object
            .as_ref()
            .or(c.old_object.as_ref())
            .and_then(Identity::of_object)
            .map(|id| (id.group, id.kind, id.namespace, id.name))
    };
    let mut deleted: BTreeMap<_, Vec<usize>> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.operation == Operation::Delete
            && let Some(k) = subject_key(c)
        {
            deleted.entry(k).or_default().push(i);
        }
    }
    if deleted.is_empty() {
        return changes;
    }
    let mut dropped = vec![false; changes.len()];
    let mut out: Vec<Option<Change>> = changes.iter().cloned().map(Some).collect();
    for (i, c) in changes.iter().enumerate() {
        if c.operation != Operation::Create {
            continue;
        }
        let Some(k) = subject_key(c) else { continue };
        let Some(j) = deleted.get_mut(&k).and_then(|v| v.pop()) else {
            continue;
        };
        dropped[j] = true;
        let old = changes[j].old_object.clone();
        if old == c.object {
            dropped[i] = true;
        } else if let Some(Some(update)) = out.get_mut(i) {
            update.operation = Operation::Update;
            update.old_object = old;
        }
    }
    out.into_iter()
        .zip(dropped)
        .filter_map(|(c, d)| if d { None } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(path: &str, kind: &str, name: &str, data: Value) -> FileObject {
        FileObject {
            path: path.into(),
            line: 1,
            lines: Default::default(),
            object: json!({"apiVersion": "v1", "kind": kind,
                           "metadata": {"name": name, "namespace": "n"}, "data": data}),
        }
    }

    #[test]
    fn identity_not_path_decides() {
        let base = vec![
            obj("a.yaml", "ConfigMap", "moved", json!(1)),
            obj("a.yaml", "ConfigMap", "changed", json!(1)),
            obj("a.yaml", "ConfigMap", "removed", json!(1)),
        ];
        let head = vec![
            obj("b.yaml", "ConfigMap", "moved", json!(1)),
            obj("a.yaml", "ConfigMap", "changed", json!(2)),
            obj("a.yaml", "ConfigMap", "added", json!(1)),
        ];
        let ops: Vec<_> = diff(base, head)
            .into_iter()
            .map(|c| {
                let o = c.object.or(c.old_object).unwrap();
                (
                    c.operation,
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                (Operation::Update, "changed".to_string()),
                (Operation::Create, "added".to_string()),
                (Operation::Delete, "removed".to_string()),
            ]
        );
    }

    #[test]
    fn moves_between_groups_are_updates_or_nothing() {
        let a = diff(
            vec![
                obj("a.yaml", "ConfigMap", "moved", json!(1)),
                obj("a.yaml", "ConfigMap", "changed", json!(1)),
            ],
            vec![],
        );
        let b = diff(
            vec![],
            vec![
                obj("k/x.yaml", "ConfigMap", "moved", json!(1)),
                obj("k/x.yaml", "ConfigMap", "changed", json!(2)),
                obj("k/x.yaml", "ConfigMap", "new", json!(2)),
            ],
        );
        let joined = pair_moves(a.into_iter().chain(b).collect());
        let ops: Vec<_> = joined
            .iter()
            .map(|c| (c.operation.clone(), c.path.as_str()))
            .collect();
        assert_eq!(
            ops,
            vec![
                (Operation::Update, "k/x.yaml"),
                (Operation::Create, "k/x.yaml")
            ]
        );
        assert_eq!(joined[0].old_object.as_ref().unwrap()["data"], json!(1));
    }

    #[test]
    fn namespaces_default_for_namespaced_kinds_only() {
        let file_object = |object: Value| FileObject {
            path: "x".into(),
            line: 1,
            lines: Default::default(),
            object,
        };
        let mut objects = vec![
            file_object(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            ),
            file_object(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}),
            ),
            // The API server drops the namespace of a cluster-scoped object.
            file_object(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "x"}}),
            ),
            // No CRD: the scope is unknown, so the manifest's word stands.
            file_object(
                json!({"apiVersion": "example.com/v1", "kind": "Cluster", "metadata": {"name": "w"}}),
            ),
            file_object(
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "demo"}}),
            ),
            file_object(
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "things.example.com"},
                "spec": {"group": "example.com", "names": {"kind": "Thing"}, "scope": "Namespaced"}}),
            ),
            file_object(
                json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}}),
            ),
        ];
        let mut scopes = Scopes::default();
        scopes.learn(&objects);
        default_namespaces(&mut objects, &scopes, "apps", None);
        let namespaces: Vec<_> = objects
            .iter()
            .map(|o| o.object["metadata"].get("namespace").cloned())
            .collect();
        assert_eq!(
            namespaces,
            vec![
                Some(json!("apps")),
                None,
                None,
                None,
                Some(json!("demo")),
                None,
                Some(json!("apps"))
            ]
        );
        assert_eq!(scopes.cluster_scoped("example.com", "Cluster"), None);
    }

    #[test]
    fn non_objects_are_noted_and_unreadable_documents_are_unchecked() {
        let (objects, notes) = read_file_objects(
            "k.yaml",
            b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n---\n---\n- just\n- a list\n",
        );
        assert!(objects.is_empty());
        let kinds: Vec<_> = notes.iter().map(|n| (n.line, n.kind)).collect();
        assert_eq!(
            kinds,
            vec![(1, NoteKind::Info), (6, NoteKind::Unreadable)],
            "{notes:?}"
        );
        assert!(
            notes[1]
                .message
                .contains("expected a mapping (an object), found a list"),
            "{:?}",
            notes[1]
        );
        let (_, notes) = read_file_objects("bad.yaml", b"a: [1\n");
        assert!(
            notes[0].kind == NoteKind::Unreadable && notes[0].message.starts_with("invalid YAML"),
            "{:?}",
            notes[0]
        );
    }
}
