//! The one input document every policy sees, in CI and at admission alike:
//!
//! ```text
//! input.review       the AdmissionRequest (admission.k8s.io/v1), or one built from a manifest
//! input.parameters   a constraint's spec.parameters (set per policy at evaluation)
//! input.source       where the change comes from: context (admission | premerge | audit, an
//!                    object already in the cluster), repository, commit, path, line, and the
//!                    GitOps source it is rendered from
//! input.provenance   the traceability verdict, when provenance is configured
//! ```
//!
//! This module is the only place that shape is defined. Fields one side cannot know (the user
//! in CI, the Git path at admission) are absent, never faked.

use k8s_openapi::api::authentication::v1::UserInfo;
use kube_core::admission::Operation;
use kube_core::{GroupVersionKind, GroupVersionResource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod rego;

/// The one input document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub review: Review,
    /// Left empty here: each policy's parameters are put in at evaluation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    pub source: Source,
    /// The traceability verdict (typed to the edge: the admission answer and the log line
    /// read it as it is; policies read its JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Verdict>,
    /// The object as its manifest writes it, when gitgate gave it a namespace it does not
    /// write: what conftest-style policies read as `input` (never part of the input document).
    #[serde(skip)]
    pub as_written: Option<Value>,
}

/// `input.review`: the AdmissionRequest shape (Gatekeeper's `input.review`), with objects kept
/// as the exact JSON the API server (or Git) holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub operation: Operation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_info: Option<UserInfo>,
    #[serde(default)]
    pub object: Option<Value>,
    #[serde(default)]
    pub old_object: Option<Value>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// Which door a document came through.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Context {
    Admission,
    Premerge,
    /// `gitgate audit`: an object already in the cluster, judged as a CREATE of it now.
    Audit,
}

/// `input.source`: where the change comes from, as far as it is known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub context: Context,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The GitOps source the object is rendered from (a kustomization or a chart of
    /// `repository.sources`), when it is rendered rather than written; `path` and `line` are
    /// then the file it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<Rendered>,
}

/// `input.source.rendered`: the folder a GitOps controller builds or templates, and how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rendered {
    /// The folder, from the repository's root (`.` for the root).
    pub source: String,
    /// `kustomize` or `helm`.
    pub engine: String,
    /// Its kustomization or `Chart.yaml`: where what the render sets is written.
    pub file: String,
}

impl Source {
    pub fn admission() -> Self {
        Source {
            context: Context::Admission,
            repository: None,
            commit: None,
            path: None,
            line: None,
            rendered: None,
        }
    }

    /// The source of an object read from the cluster by `audit`.
    pub fn audit() -> Self {
        Source {
            context: Context::Audit,
            repository: None,
            commit: None,
            path: None,
            line: None,
            rendered: None,
        }
    }

    /// A pre-merge source for a manifest at `path:line`.
    pub fn premerge(path: Option<String>, line: Option<usize>) -> Self {
        Source {
            context: Context::Premerge,
            repository: None,
            commit: None,
            path,
            line,
            rendered: None,
        }
    }
}

/// The identity of an object: what makes two manifests "the same object".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Identity {
    /// The identity of a Kubernetes object, or `None` when it has no `apiVersion`, `kind` or
    /// `metadata.name` (then it is not a Kubernetes object).
    pub fn of_object(obj: &Value) -> Option<Identity> {
        let gvk = gvk_of(obj)?;
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_string();
        let namespace = meta
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Some(Identity {
            group: gvk.group,
            version: gvk.version,
            kind: gvk.kind,
            namespace,
            name,
        })
    }

    /// `group/kind namespace/name`, for messages.
    pub fn describe(&self) -> String {
        let gk = if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        };
        match &self.namespace {
            Some(ns) => format!("{gk} {ns}/{}", self.name),
            None => format!("{gk} {}", self.name),
        }
    }
}

/// Group, version and kind of an object from its `apiVersion` and `kind`.
pub fn gvk_of(obj: &Value) -> Option<GroupVersionKind> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    if kind.is_empty() || api_version.is_empty() {
        return None;
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    Some(GroupVersionKind::gvk(group, version, kind))
}

/// Why an input could not be turned into a document. Messages name the input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{input}: malformed AdmissionReview JSON: {message}")]
    Json { input: String, message: String },
    #[error(
        "{input}: expected kind AdmissionReview with apiVersion admission.k8s.io/v1 or v1beta1, got kind {kind:?} apiVersion {api_version:?}"
    )]
    WrongType {
        input: String,
        kind: String,
        api_version: String,
    },
    #[error("{input}: the AdmissionReview has no request")]
    NoRequest { input: String },
    #[error("{input}: the AdmissionReview request has no uid")]
    NoUid { input: String },
    #[error("{input}: invalid AdmissionReview request: {message}")]
    BadRequest { input: String, message: String },
    #[error("{input}: not a Kubernetes object (needs apiVersion, kind and metadata.name)")]
    NotAnObject { input: String },
    /// The AdmissionReview is nested deeper than [`MAX_DEPTH`] levels (its object or old
    /// object: a custom resource can nest without end), but its envelope is readable: the
    /// request is kept without the objects, so that it can still be answered.
    #[error("{input}: {}", too_deep())]
    TooDeep {
        input: String,
        version: ReviewVersion,
        review: Box<Review>,
    },
}

/// The most levels of nesting gitgate reads in a JSON document (serde_json's limit, which
/// keeps its recursion off the end of a thread's stack). A manifest in Git is never deeper
/// (YAML stops at 64 levels), so a deeper object cannot be traced to Git.
pub const MAX_DEPTH: usize = 128;

/// Why an object nested deeper than [`MAX_DEPTH`] is not read, in words for a denial.
pub fn too_deep() -> String {
    format!(
        "the request is nested deeper than {MAX_DEPTH} levels, the most gitgate reads: its object cannot be judged, and no manifest in Git is that deep"
    )
}

/// The AdmissionReview versions gitgate answers; a response uses the version of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewVersion {
    V1,
    V1beta1,
}

impl ReviewVersion {
    pub fn api_version(self) -> &'static str {
        match self {
            ReviewVersion::V1 => "admission.k8s.io/v1",
            ReviewVersion::V1beta1 => "admission.k8s.io/v1beta1",
        }
    }

    /// The version of a body of this `kind` and `apiVersion`, if it is an AdmissionReview.
    fn of(kind: &str, api_version: &str) -> Option<ReviewVersion> {
        match (kind, api_version) {
            ("AdmissionReview", "admission.k8s.io/v1") => Some(ReviewVersion::V1),
            ("AdmissionReview", "admission.k8s.io/v1beta1") => Some(ReviewVersion::V1beta1),
            _ => None,
        }
    }
}

/// Parses an AdmissionReview body (`input` names it in errors) into its version and request.
/// A request nested deeper than [`MAX_DEPTH`] whose envelope can be read is
/// [`InputError::TooDeep`], carrying the request without its objects.
pub fn parse_admission_review(
    input: &str,
    body: &[u8],
) -> Result<(ReviewVersion, Review), InputError> {
    if let Some(parsed) = typed_admission_review(body) {
        return Ok(parsed);
    }
    parse_through_value(input, body)
}

/// [`parse_admission_review`] through a JSON value: every case the one-pass reading leaves
/// out, and each error.
fn parse_through_value(input: &str, body: &[u8]) -> Result<(ReviewVersion, Review), InputError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            let error = InputError::Json {
                input: input.to_string(),
                message: e.to_string(),
            };
            // serde_json names its limit only in the message.
            if !e.to_string().starts_with("recursion limit exceeded") {
                return Err(error);
            }
            return Err(match shallow_admission_review(body) {
                Some((version, review)) => InputError::TooDeep {
                    input: input.to_string(),
                    version,
                    review: Box::new(review),
                },
                None => error,
            });
        }
    };
    admission_review_from_value(input, value, true)
}

/// An AdmissionReview read in one pass straight into its [`Review`], as an API server sends
/// it, or `None` for anything else (a body that does not parse, a wrong type, a request
/// without a uid or with a field of the wrong type, a field given twice, a missing `kind`):
/// [`parse_admission_review`] then reads it through [`admission_review_from_value`], which
/// gives the same result or names what is wrong. Reading the body into a JSON value first,
/// copying its object and converting it again cost about a third of parse + decide
/// (BENCHMARKS.md). The result is the one the other path gives (tested on every fixture).
fn typed_admission_review(body: &[u8]) -> Option<(ReviewVersion, Review)> {
    /// Some(value) when the field is present, even as `null`; `None` when it is absent.
    fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }
    /// Only a JSON object (a struct also reads from an array, by position; the other path
    /// takes nothing but an object).
    fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
        struct OnlyMap<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for OnlyMap<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(OnlyMap(std::marker::PhantomData))
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        kind: String,
        api_version: String,
        #[serde(deserialize_with = "object")]
        request: Request,
    }
    /// [`Review`] with what [`admission_review_from_value`] fills in told apart: absent.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Request {
        #[serde(default)]
        uid: String,
        #[serde(default, deserialize_with = "present")]
        kind: Option<GroupVersionKind>,
        #[serde(default)]
        resource: Option<GroupVersionResource>,
        #[serde(default)]
        sub_resource: Option<String>,
        #[serde(default)]
        request_kind: Option<GroupVersionKind>,
        #[serde(default)]
        request_resource: Option<GroupVersionResource>,
        #[serde(default)]
        request_sub_resource: Option<String>,
        #[serde(default, deserialize_with = "present")]
        name: Option<String>,
        #[serde(default, deserialize_with = "present")]
        namespace: Option<Option<String>>,
        operation: Operation,
        #[serde(default)]
        user_info: Option<UserInfo>,
        #[serde(default, deserialize_with = "present")]
        object: Option<Value>,
        #[serde(default, deserialize_with = "present")]
        old_object: Option<Value>,
        #[serde(default)]
        dry_run: bool,
        #[serde(default)]
        options: Option<Value>,
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let version = ReviewVersion::of(&envelope.kind, &envelope.api_version)?;
    let r = envelope.request;
    if r.uid.is_empty() {
        return None;
    }
    // What the other path fills in from the object (`object` when the key is there, even as
    // null, else `oldObject`), for a field the request leaves out.
    let obj = r.object.as_ref().or(r.old_object.as_ref());
    let meta = |key: &str| {
        obj.and_then(|o| o.get("metadata"))
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let kind = match r.kind {
        Some(kind) => kind,
        None => obj.and_then(gvk_of)?,
    };
    let name = match r.name {
        Some(name) => name,
        None => meta("name").unwrap_or_default(),
    };
    let namespace = match r.namespace {
        Some(namespace) => namespace,
        None => meta("namespace"),
    };
    let review = Review {
        uid: r.uid,
        kind,
        resource: r.resource,
        sub_resource: r.sub_resource,
        request_kind: r.request_kind,
        request_resource: r.request_resource,
        request_sub_resource: r.request_sub_resource,
        name,
        namespace,
        operation: r.operation,
        user_info: r.user_info,
        object: r.object.filter(|v| !v.is_null()),
        old_object: r.old_object.filter(|v| !v.is_null()),
        dry_run: r.dry_run,
        options: r.options,
    };
    Some((version, review))
}

/// The envelope of an AdmissionReview without the objects: serde skips the fields a type
/// does not name without recursion (and so without a depth limit), and the rest is shallow.
/// `None` when even that cannot be read, or the request lacks its uid.
fn shallow_admission_review(body: &[u8]) -> Option<(ReviewVersion, Review)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        kind: String,
        api_version: String,
        request: Shallow,
    }
    /// [`Review`] without `object`, `oldObject` and `options`.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shallow {
        uid: String,
        kind: GroupVersionKind,
        #[serde(default)]
        resource: Option<GroupVersionResource>,
        #[serde(default)]
        sub_resource: Option<String>,
        #[serde(default)]
        request_kind: Option<GroupVersionKind>,
        #[serde(default)]
        request_resource: Option<GroupVersionResource>,
        #[serde(default)]
        request_sub_resource: Option<String>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        namespace: Option<String>,
        operation: Operation,
        #[serde(default)]
        user_info: Option<UserInfo>,
        #[serde(default)]
        dry_run: bool,
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let version = ReviewVersion::of(&envelope.kind, &envelope.api_version)?;
    let r = envelope.request;
    if r.uid.is_empty() {
        return None;
    }
    let review = Review {
        uid: r.uid,
        kind: r.kind,
        resource: r.resource,
        sub_resource: r.sub_resource,
        request_kind: r.request_kind,
        request_resource: r.request_resource,
        request_sub_resource: r.request_sub_resource,
        name: r.name,
        namespace: r.namespace,
        operation: r.operation,
        user_info: r.user_info,
        object: None,
        old_object: None,
        dry_run: r.dry_run,
        options: None,
    };
    Some((version, review))
}

/// Like [`parse_admission_review`] for an already parsed value. `require_uid` is false for
/// test suites, whose hand-written reviews carry no uid.
pub fn admission_review_from_value(
    input: &str,
    mut value: Value,
    require_uid: bool,
) -> Result<(ReviewVersion, Review), InputError> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let version = match ReviewVersion::of(kind, api_version) {
        Some(version) => version,
        None => {
            return Err(InputError::WrongType {
                input: input.to_string(),
                kind: kind.to_string(),
                api_version: api_version.to_string(),
            });
        }
    };
    let mut request = match value.get_mut("request").map(Value::take) {
        Some(r @ Value::Object(_)) => r,
        _ => {
            return Err(InputError::NoRequest {
                input: input.to_string(),
            });
        }
    };
    if require_uid
        && request
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(InputError::NoUid {
            input: input.to_string(),
        });
    }
    // Hand-written reviews (gator suites) may leave out `kind`, `name` and `namespace`: take
    // them from the object, as Gatekeeper does.
    if let Some(obj) = request.get("object").or_else(|| request.get("oldObject")) {
        let obj = obj.clone();
        let req = request.as_object_mut().expect("checked to be an object");
        if !req.contains_key("kind")
            && let Some(gvk) = gvk_of(&obj)
        {
            req.insert(
                "kind".into(),
                serde_json::to_value(gvk).unwrap_or(Value::Null),
            );
        }
        let meta = obj.get("metadata");
        for key in ["name", "namespace"] {
            if !req.contains_key(key)
                && let Some(v) = meta.and_then(|m| m.get(key)).and_then(Value::as_str)
            {
                req.insert(key.into(), Value::String(v.to_string()));
            }
        }
    }
    let review: Review = serde_json::from_value(request).map_err(|e| InputError::BadRequest {
        input: input.to_string(),
        message: e.to_string(),
    })?;
    Ok((version, review))
}

impl Document {
    /// The document for an admission request.
    pub fn from_review(review: Review) -> Document {
        Document {
            review,
            parameters: None,
            source: Source::admission(),
            provenance: None,
            as_written: None,
        }
    }

    /// The document for a manifest and an operation, as `check` and `verify` build it:
    /// CREATE (`object` only), UPDATE (`object` and `old_object`), DELETE (`old_object` only).
    /// `input` names the manifest in errors.
    pub fn from_manifest(
        input: &str,
        operation: Operation,
        object: Option<Value>,
        old_object: Option<Value>,
        source: Source,
    ) -> Result<Document, InputError> {
        let subject =
            object
                .as_ref()
                .or(old_object.as_ref())
                .ok_or_else(|| InputError::NotAnObject {
                    input: input.to_string(),
                })?;
        let kind = gvk_of(subject).ok_or_else(|| InputError::NotAnObject {
            input: input.to_string(),
        })?;
        let meta = subject.get("metadata");
        let field = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let review = Review {
            uid: String::new(),
            request_kind: Some(kind.clone()),
            kind,
            resource: None,
            sub_resource: None,
            request_resource: None,
            request_sub_resource: None,
            name: field("name").unwrap_or_default(),
            namespace: field("namespace").filter(|s| !s.is_empty()),
            operation,
            user_info: None,
            object,
            old_object,
            dry_run: false,
            options: None,
        };
        Ok(Document {
            review,
            parameters: None,
            source,
            provenance: None,
            as_written: None,
        })
    }

    /// The object a policy judges: `object`, or `oldObject` for a DELETE.
    pub fn subject(&self) -> Option<&Value> {
        self.review.object.as_ref().filter(|v| !v.is_null()).or(self
            .review
            .old_object
            .as_ref()
            .filter(|v| !v.is_null()))
    }

    /// The document as the Rego value bound to `input`: its JSON, written straight into Rego
    /// values in one walk ([`rego`]), with no JSON value built in between. An error only for
    /// what JSON could not hold either; a caller fails closed on it, never decides on a null.
    pub fn to_rego(&self) -> Result<regorus::Value, rego::ToRegoError> {
        rego::to_rego(self)
    }
}

/// Converts JSON to a Rego value (used for data and parameters; the input document is
/// [`Document::to_rego`]): the same conversion ([`rego`]).
pub fn json_to_rego(json: &Value) -> regorus::Value {
    // JSON's keys are strings and its numbers finite: this cannot fail.
    rego::to_rego(json).unwrap_or(regorus::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manifest_document_has_gatekeeper_review_shape() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo"}});
        let doc = Document::from_manifest(
            "deploy.yaml",
            Operation::Create,
            Some(obj.clone()),
            None,
            Source::premerge(Some("deploy.yaml".into()), Some(1)),
        )
        .unwrap();
        let v = serde_json::to_value(&doc).unwrap();
        assert_eq!(
            v["review"]["kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(v["review"]["operation"], "CREATE");
        assert_eq!(v["review"]["namespace"], "demo");
        assert_eq!(v["review"]["object"], obj);
        assert_eq!(v["source"]["context"], "premerge");
        assert!(v["review"].get("userInfo").is_none(), "CI knows no user");
        assert!(v.get("provenance").is_none());
    }

    /// `input` is the document's JSON for a manifest's document too: parameters, every field
    /// of `source`, an UPDATE's two objects, numbers of each kind.
    #[test]
    fn the_rego_input_is_the_documents_json() {
        let old = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "namespace": "n", "labels": {}}, "data": {}, "binaryData": null});
        let new = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "namespace": "n", "annotations": {"a": "1"}}, "data": {"k": "v"},
            "n": [0, -1, 18446744073709551615u64, 0.5, 1e300, [], [{}]]});
        let mut source = Source::premerge(Some("apps/c.yaml".into()), Some(7));
        source.repository = Some("https://git.example/r".into());
        source.commit = Some("0123".into());
        source.rendered = Some(Rendered {
            source: "apps".into(),
            engine: "kustomize".into(),
            file: "apps/kustomization.yaml".into(),
        });
        let mut doc = Document::from_manifest(
            "apps/c.yaml",
            Operation::Update,
            Some(new),
            Some(old),
            source,
        )
        .unwrap();
        doc.parameters = Some(json!({"registries": ["ghcr.io/"], "empty": {}}));
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(doc.to_rego().unwrap(), json_to_rego(&json));
        assert_eq!(
            doc.to_rego().unwrap(),
            regorus::Value::from_json_str(&json.to_string()).unwrap()
        );
    }

    /// The one-pass reading gives what the reading through a JSON value gives, or leaves the
    /// body to it: on every fixture, and on requests that leave out what the other path fills
    /// in, or hold what it refuses.
    #[test]
    fn the_one_pass_reading_agrees_with_the_reading_through_a_value() {
        let mut bodies: Vec<(String, Vec<u8>)> = Vec::new();
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/admission-v1");
        match std::fs::read_dir(&fixtures) {
            Ok(dir) => {
                for entry in dir.flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "json") {
                        let name = path.display().to_string();
                        bodies.push((name, std::fs::read(&path).unwrap()));
                    }
                }
                assert!(bodies.len() >= 30, "{} fixtures", bodies.len());
            }
            Err(_) => eprintln!("skipping the fixtures: {} is absent", fixtures.display()),
        }
        let object = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"prod"}}"#;
        let gvk = r#"{"group":"apps","version":"v1","kind":"Deployment"}"#;
        let cases = [
            format!(
                r#"{{"uid":"1","kind":{gvk},"name":"web","namespace":"prod","operation":"CREATE","object":{object}}}"#
            ),
            format!(r#"{{"uid":"1","operation":"CREATE","object":{object}}}"#),
            format!(r#"{{"uid":"1","kind":{gvk},"operation":"DELETE","oldObject":{object}}}"#),
            format!(
                r#"{{"uid":"1","kind":{gvk},"operation":"DELETE","object":null,"oldObject":{object}}}"#
            ),
            format!(r#"{{"uid":"1","operation":"DELETE","object":null,"oldObject":{object}}}"#),
            format!(
                r#"{{"uid":"1","kind":{gvk},"name":"web","namespace":null,"operation":"CREATE","object":{object}}}"#
            ),
            format!(
                r#"{{"uid":"1","kind":{gvk},"name":null,"operation":"CREATE","object":{object}}}"#
            ),
            format!(r#"{{"uid":"1","kind":null,"operation":"CREATE","object":{object}}}"#),
            format!(r#"{{"uid":"","kind":{gvk},"operation":"CREATE","object":{object}}}"#),
            format!(r#"{{"uid":7,"kind":{gvk},"operation":"CREATE"}}"#),
            format!(r#"{{"kind":{gvk},"operation":"CREATE","object":{object}}}"#),
            format!(r#"{{"uid":"1","kind":{gvk},"kind":{gvk},"operation":"CREATE"}}"#),
            format!(
                r#"{{"uid":"1","kind":{gvk},"operation":"UPDATE","dryRun":true,"options":null,"object":{object},"oldObject":{object},"extra":[1]}}"#
            ),
            format!(r#"["1",{gvk}]"#),
        ];
        for (i, request) in cases.iter().enumerate() {
            let body = format!(
                r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{request}}}"#
            );
            bodies.push((format!("case {i}"), body.into_bytes()));
        }
        bodies.push((
            "an array".into(),
            format!(r#"["AdmissionReview","admission.k8s.io/v1",{}]"#, cases[0]).into_bytes(),
        ));
        let mut typed = 0;
        for (name, body) in &bodies {
            let through = parse_through_value("t", body);
            match typed_admission_review(body) {
                Some(one_pass) => {
                    typed += 1;
                    let through = through.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(one_pass, through, "{name}");
                }
                None => assert!(
                    through.is_err() || !name.contains("fixtures"),
                    "{name}: a fixture left to the other path"
                ),
            }
        }
        // The fixtures (when present) and the readable cases go through the one pass.
        assert!(typed >= 7, "{typed} read in one pass");
    }

    #[test]
    fn admission_review_errors_name_the_input() {
        let e = parse_admission_review("req-1", b"{not json").unwrap_err();
        assert!(e.to_string().starts_with("req-1: malformed"), "{e}");
        let e = parse_admission_review(
            "req-2",
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v2"}"#,
        )
        .unwrap_err();
        assert!(matches!(e, InputError::WrongType { .. }), "{e}");
        let e = parse_admission_review(
            "req-3",
            br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, InputError::NoUid { .. }), "{e}");
    }

    #[test]
    fn a_request_too_deep_to_read_keeps_its_envelope() {
        let mut object = json!({"leaf": 1});
        for _ in 0..140 {
            object = json!({ "child": object });
        }
        let review = json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
            "request": {"uid": "u-1", "kind": {"group": "example.com", "version": "v1", "kind": "Tree"},
                "name": "t", "namespace": "demo", "operation": "CREATE",
                "userInfo": {"username": "alice"}, "object": object, "oldObject": null}});
        let body = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || serde_json::to_vec(&review).unwrap())
            .unwrap()
            .join()
            .unwrap();
        match parse_admission_review("req", &body) {
            Err(e @ InputError::TooDeep { .. }) => {
                assert!(
                    e.to_string()
                        .starts_with("req: the request is nested deeper than 128 levels"),
                    "{e}"
                );
                let InputError::TooDeep {
                    version, review, ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(version, ReviewVersion::V1);
                assert_eq!((review.uid.as_str(), review.name.as_str()), ("u-1", "t"));
                assert_eq!(review.kind.kind, "Tree");
                assert!(review.object.is_none());
            }
            other => panic!("{other:?}"),
        }
        // Without a uid the envelope is not an AdmissionReview gitgate can answer.
        let text = String::from_utf8(body).unwrap().replace("\"u-1\"", "\"\"");
        let e = parse_admission_review("req", text.as_bytes()).unwrap_err();
        assert!(matches!(e, InputError::Json { .. }), "{e}");
    }

    #[test]
    fn json_converts_to_the_same_rego_value_as_regorus_parses() {
        let text = r#"{"a": [1, -2, 3.5, 18446744073709551615, "x", null, true], "b": {"c": {}}}"#;
        let json: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            json_to_rego(&json),
            regorus::Value::from_json_str(text).unwrap()
        );
    }

    #[test]
    fn identity_of_core_and_grouped_objects() {
        let id = Identity::of_object(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}),
        )
        .unwrap();
        assert_eq!(id.describe(), "ConfigMap n/c");
        assert!(Identity::of_object(&json!({"kind": "X"})).is_none());
    }
}

/// `input.provenance.status`: what [`crate::provenance::verdict`] judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Traceable,
    Untraceable,
    Modified,
    Exempt,
    /// Written by helm-controller for a HelmRelease of the newest approved commit whose chart
    /// comes from a chart repository: Git approves the release (its pinned chart version and
    /// values), not each object.
    Delegated,
}

impl Status {
    /// The status as policies, metrics and logs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Traceable => "traceable",
            Status::Untraceable => "untraceable",
            Status::Modified => "modified",
            Status::Exempt => "exempt",
            Status::Delegated => "delegated",
        }
    }
}

/// A break-glass admission: who and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakGlass {
    pub user: String,
    pub reason: String,
}

/// `input.provenance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub status: Status,
    /// Why, in words a person reads in a denial.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The source the manifest comes from (the folder rendered, see [`crate::render`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default)]
    pub differing: Vec<String>,
    #[serde(default)]
    pub unattested: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
}

impl Verdict {
    pub(crate) fn simple(status: Status, reason: impl Into<String>) -> Verdict {
        Verdict {
            status,
            reason: reason.into(),
            commit: None,
            path: None,
            line: None,
            source: None,
            differing: Vec::new(),
            unattested: Vec::new(),
            break_glass: None,
        }
    }

    /// A verdict about a manifest at a commit, path and line, with no field comparison (what
    /// `check` gives a pull request's own documents).
    pub fn at(
        status: Status,
        reason: impl Into<String>,
        commit: String,
        path: String,
        line: usize,
    ) -> Verdict {
        Verdict {
            commit: Some(commit),
            path: Some(path),
            line: Some(line),
            ..Verdict::simple(status, reason)
        }
    }

    /// The verdict as the JSON policies read.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// An operation as the API server spells it.
pub fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}
