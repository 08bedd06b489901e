//! Why a source could not be rendered. Every message starts with the source (the folder that
//! is built or templated) and says what to change; none is transient except
//! [`RenderError::Timeout`], which a later sync tries again.

/// A render error of one source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// A kustomization names a remote base or resource (a URL, `github.com/...`, `git::`).
    #[error(
        "{unit}: {file} refers to the remote {field} {reference}: remote bases and resources are \
         never fetched (rendering has no network); vendor it into the repository"
    )]
    Remote {
        unit: String,
        file: String,
        field: String,
        reference: String,
    },
    /// A reference that leaves the repository (`../../..` past its root, an absolute path).
    #[error("{unit}: {file} refers to {reference} ({field}), outside the repository")]
    Outside {
        unit: String,
        file: String,
        field: String,
        reference: String,
    },
    /// A reference to a path the commit does not hold.
    #[error("{unit}: {file} refers to {reference} ({field}), which is not in the commit")]
    Missing {
        unit: String,
        file: String,
        field: String,
        reference: String,
    },
    /// A generator, transformer or validator that would run a program (an exec or container
    /// KRM function, a legacy plugin), or kustomize's `helmCharts`, which runs helm and pulls.
    #[error("{unit}: {file}: {what}: plugins and functions that run programs are never run")]
    Plugin {
        unit: String,
        file: String,
        what: String,
    },
    /// A chart dependency that is not vendored under `charts/`.
    #[error(
        "{unit}: the chart's dependency {name} ({repository}) is not vendored under charts/: \
         charts are never pulled (rendering has no network); run `helm dependency build` and \
         commit charts/"
    )]
    Dependency {
        unit: String,
        name: String,
        repository: String,
    },
    /// The folder is not what the source says (no kustomization, no `Chart.yaml`, not a
    /// folder), or a configured file is missing.
    #[error("{unit}: {message}")]
    Source { unit: String, message: String },
    /// The engine's binary cannot be found or run.
    #[error("{unit}: cannot run {engine}: {message}")]
    Unavailable {
        unit: String,
        engine: String,
        message: String,
    },
    /// The engine ran and failed: its own message.
    #[error("{unit}: {engine} failed: {message}")]
    Engine {
        unit: String,
        engine: String,
        message: String,
    },
    /// The render took longer than `render.timeout`; its processes were killed.
    #[error("{unit}: {engine} did not finish within {limit} (render.timeout): it was stopped")]
    Timeout {
        unit: String,
        engine: String,
        limit: String,
    },
    /// The render wrote more than `render.maxOutputBytes`; its processes were killed.
    #[error(
        "{unit}: {engine} wrote more than {limit} bytes (render.maxOutputBytes): it was stopped"
    )]
    TooLarge {
        unit: String,
        engine: String,
        limit: usize,
    },
    /// The engine's output is not a stream of Kubernetes objects (invalid YAML from a
    /// template, a document that is not an object).
    #[error("{unit}: the output of {engine} is not a list of Kubernetes objects: {message}")]
    Output {
        unit: String,
        engine: String,
        message: String,
    },
    /// The commit's tree could not be read or written to the temporary checkout.
    #[error("{unit}: {message}")]
    Io { unit: String, message: String },
}

impl RenderError {
    /// Whether trying again may succeed (a render that ran out of time on a loaded machine).
    pub fn is_transient(&self) -> bool {
        matches!(self, RenderError::Timeout { .. } | RenderError::Io { .. })
    }
}
