//! What the configuration says about rendering: `repository.sources` (what each source is and
//! how the GitOps controller renders it) and `render:` (the engines and their limits).

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// How a source is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// As Flux does: a folder with a kustomization is a kustomize build, a folder with
    /// `Chart.yaml` a Helm chart, any other folder every manifest under it (its subfolders
    /// that are kustomizations or charts rendered as such).
    #[default]
    Auto,
    /// Every manifest under the folder, as written.
    Plain,
    /// `kustomize build` of the folder.
    Kustomize,
    /// `helm template` of the chart in the folder.
    Helm,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Auto => "auto",
            Kind::Plain => "plain",
            Kind::Kustomize => "kustomize",
            Kind::Helm => "helm",
        }
    }
}

/// Whose objects a source's `follow` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Follow {
    /// Flux's `Kustomization`s and `HelmRelease`s.
    Flux,
    /// Argo CD's `Application`s.
    Argocd,
    /// Both: whichever the folder holds.
    Auto,
}

/// One entry of `repository.sources`: what the GitOps controller applies from one folder.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceSpec {
    /// The folder, from the repository's root (`""` or `.` for the root).
    pub path: String,
    pub render: Kind,
    /// The namespace of namespaced objects that set none (Flux's `targetNamespace`, Argo CD's
    /// destination namespace); also Helm's release namespace unless `helm.namespace` is set.
    pub namespace: Option<String>,
    pub helm: HelmSpec,
    /// Read the GitOps controller's own objects that the folder applies (Flux
    /// `Kustomization`s and `HelmRelease`s, Argo CD `Application`s) and render what each of
    /// them applies from this repository, as the controller does, in turn (app of apps).
    pub follow: Option<Follow>,
}

/// How a Helm chart is templated (`helm template <releaseName> <path> ...`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmSpec {
    /// Default: the chart's folder name.
    pub release_name: Option<String>,
    /// Default: the source's `namespace`, else `repository.defaultNamespace`.
    pub namespace: Option<String>,
    /// Values files, relative to the chart's folder (`--values`, in order).
    pub value_files: Vec<String>,
    /// Values given inline (applied after the files, as Argo CD's `valuesObject`).
    pub values: Option<serde_json::Value>,
    /// `--include-crds`: the chart's `crds/` are applied too (Argo CD and Flux do by default).
    #[serde(rename = "includeCRDs")]
    pub include_crds: Option<bool>,
    /// The values files replace the chart's own `values.yaml` (which counts only where they
    /// list it) instead of being layered over it: Flux's `HelmChart.spec.valuesFiles`, which
    /// source-controller merges into the packaged chart's defaults. Set by `follow` only.
    #[serde(skip)]
    #[schemars(skip)]
    pub replace_chart_values: bool,
    /// A values file Git does not hold is left out rather than an error (Flux's
    /// `ignoreMissingValuesFiles`). Set by `follow` only.
    #[serde(skip)]
    #[schemars(skip)]
    pub ignore_missing_values_files: bool,
}

/// `render:` in the configuration: the engines and the limits of one render.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "RenderSettings")]
pub struct Settings {
    /// The `kustomize` binary; default `kustomize` on PATH, else `kubectl kustomize`. A
    /// binary named `kubectl` is run as `kubectl kustomize`.
    pub kustomize_binary: Option<PathBuf>,
    /// The `helm` binary (default `helm` on PATH).
    pub helm_binary: Option<PathBuf>,
    /// The time one render may take; past it the engine's process group is killed.
    #[serde(
        deserialize_with = "crate::manifest::duration",
        serialize_with = "crate::manifest::write_duration"
    )]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// The most output one render may write; past it reading stops and the engine is killed.
    pub max_output_bytes: usize,
    /// A source whose output depends on the cluster (a chart that calls `lookup` or reads
    /// `.Capabilities` beyond the version) cannot be verified from Git: a warning by default,
    /// an error (`check` exits 2) when true.
    pub strict: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kustomize_binary: None,
            helm_binary: None,
            timeout: Duration::from_secs(60),
            max_output_bytes: 64 * 1024 * 1024,
            strict: false,
        }
    }
}
