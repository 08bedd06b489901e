//! One setup step from what was typed to the working parts: the configuration ([`Config`])
//! turned into what each layer takes, built once. Below this module no layer reads `Config`:
//! the renderer, the mirror's source, the trusted keys, the tracking stamps and mutation
//! allowances ([`MatchOptions`]), the provenance rules a request is judged by
//! ([`Rules`]), and the policy set (the built-in library, the configured paths, `--policy`,
//! the empty check and the enforcement overrides) are all made here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::policy::load::{SourceFile, load, read_paths};
use crate::policy::{Enforcement, Options, PolicyError, PolicySet};
use crate::provenance::approval::{Trust, Window};
use crate::provenance::closed::{Allowance, Stamps};
use crate::provenance::matching::MatchOptions;
use crate::provenance::mirror::Source;
use crate::provenance::openpgp::OpenPgpKeys;
use crate::provenance::path::Pattern;
use crate::provenance::signers::AllowedSigners;
use crate::provenance::verdict::{AsRules, BreakGlassRule, Exemptions, Rules};
use crate::render::Renderer;

// --- rendering ---------------------------------------------------------------------------

impl crate::render::Renderer {
    /// The renderer a configuration describes (`repository.sources`, `repository.paths`,
    /// `render:`).
    pub fn from_config(config: &Config) -> Renderer {
        Renderer::new(
            config.repository.sources.clone(),
            &config.repository.paths,
            config.render.clone(),
            &config.repository.default_namespace,
        )
        .with_repository(crate::render::follow::ThisRepository {
            url: config.repository.url.clone(),
            branch: config.repository.branch.clone(),
            learned: Vec::new(),
        })
    }
}

// --- provenance ----------------------------------------------------------------------------

impl crate::provenance::mirror::Source {
    /// The source a configuration names, or `None` when no repository is configured or
    /// provenance is turned off. Trusted keys are loaded here: a bad key file is an error.
    pub fn from_config(
        config: &Config,
    ) -> Result<Option<Source>, crate::provenance::ProvenanceError> {
        let url = match &config.repository.url {
            Some(url) if provenance_on(config) => url.clone(),
            _ => return Ok(None),
        };
        let remote =
            crate::provenance::fetch::is_remote(&url).then(|| crate::provenance::fetch::Remote {
                url: url.clone(),
                branch: config.repository.branch.clone(),
                dir: config.repository.mirror_dir.clone(),
                credentials: config.repository.credentials.clone(),
                ca_file: config.repository.ca_file.clone(),
                timeout: config.repository.fetch_timeout,
                // The window's first-parent chain lies within this depth of the tip when its
                // commits are approved (a merge's other parents are history the window never
                // reads); a sync deepens the fetch when unapproved commits on top need it.
                depth: crate::provenance::mirror::depth(
                    config.approval.window.commits.saturating_add(1),
                ),
            });
        let trust = Trust::from_config(&config.approval)?.map(Arc::new);
        Ok(Some(Source {
            path: remote
                .as_ref()
                .map_or_else(|| PathBuf::from(&url), |r| r.dir.clone()),
            remote,
            branch: config.repository.branch.clone(),
            roots: config.repository.paths.clone(),
            renderer: crate::render::Renderer::from_config(config),
            default_namespace: config.repository.default_namespace.clone(),
            window: Window {
                commits: config.approval.window.commits,
                max_age: config.approval.window.max_age,
            },
            trust,
            refresh: config.repository.refresh,
            acknowledge_rewind: config.approval.acknowledge_rewind.clone(),
        }))
    }
}

impl crate::provenance::approval::Trust {
    /// The trusted keys the configuration names, or `None` when signatures are not required.
    /// A key file that cannot be read or parsed is an error naming it.
    pub fn from_config(
        approval: &crate::config::Approval,
    ) -> Result<Option<Trust>, crate::provenance::ProvenanceError> {
        if !approval.require_signatures {
            return Ok(None);
        }
        let ssh = match &approval.allowed_signers {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    crate::provenance::ProvenanceError::KeyFile {
                        file: path.display().to_string(),
                        source,
                    }
                })?;
                AllowedSigners::parse(&path.display().to_string(), &text)?
            }
            None => AllowedSigners::default(),
        };
        let openpgp = OpenPgpKeys::load(&approval.openpgp_keys)?;
        Ok(Some(Trust { ssh, openpgp }))
    }
}

impl From<&crate::config::ControllerStamps> for Stamps {
    fn from(c: &crate::config::ControllerStamps) -> Self {
        Stamps {
            labels: c.labels.clone(),
            annotations: c.annotations.clone(),
            label_prefixes: c.label_prefixes.clone(),
            annotation_prefixes: c.annotation_prefixes.clone(),
        }
    }
}

impl crate::provenance::closed::Allowance {
    /// The allowance of a configuration entry; `Err` names the path that does not parse.
    pub fn parse(m: &crate::config::Mutation) -> Result<Allowance, String> {
        Ok(Allowance {
            kinds: m.kinds.clone(),
            paths: m
                .paths
                .iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<_, _>>()?,
            by: m.by.clone(),
        })
    }
}

impl From<&crate::config::ControllerStamps> for MatchOptions {
    fn from(stamps: &crate::config::ControllerStamps) -> Self {
        MatchOptions {
            stamps: Stamps::from(stamps),
            mutations: Vec::new(),
        }
    }
}

impl From<&crate::config::Provenance> for MatchOptions {
    /// A mutation allowance whose path does not parse allows nothing (the configuration's
    /// validation has already refused it, naming the path).
    fn from(p: &crate::config::Provenance) -> Self {
        MatchOptions {
            stamps: Stamps::from(&p.controller_stamps),
            mutations: p
                .mutations
                .iter()
                .filter_map(|m| Allowance::parse(m).ok())
                .collect(),
        }
    }
}

impl From<&Config> for Rules {
    fn from(config: &Config) -> Rules {
        let ex = &config.exempt;
        Rules {
            exempt: Exemptions {
                namespaces: ex.namespaces.clone(),
                users: ex.users.clone(),
                groups: ex.groups.clone(),
                controllers: ex.controllers.clone(),
                subresources: ex.subresources.clone(),
            },
            break_glass: BreakGlassRule {
                groups: config.break_glass.groups.clone(),
                reason_annotation: config.break_glass.reason_annotation.clone(),
            },
            options: MatchOptions::from(&config.provenance),
            controllers: config.provenance.controllers.clone(),
            helm_controller: config.provenance.helm_controller.clone(),
        }
    }
}

/// A configuration judges as the rules it describes (built on each call: the webhook builds
/// its [`Rules`] once, at start).
impl AsRules for Config {
    fn rules(&self) -> std::borrow::Cow<'_, Rules> {
        std::borrow::Cow::Owned(Rules::from(self))
    }
}

// --- the cluster ---------------------------------------------------------------------------

impl crate::cluster::sync::Needs {
    /// What the policies and the configuration need of the cluster.
    pub fn of(set: &PolicySet, config: &Config) -> Self {
        Self::of_parts(
            set,
            &config.inventory.sync,
            config.audit.interval.is_some(),
            &config.audit.excluded_namespaces,
        )
    }
}

impl crate::cluster::Cluster {
    /// Connects and starts the caches when something needs them or `cluster.enabled: true`
    /// asks for it (see [`crate::cluster::Cluster::start_with`]).
    pub async fn start(
        config: &Config,
        needs: &crate::cluster::sync::Needs,
        kubeconfig: Option<&Path>,
        crds: bool,
    ) -> Self {
        Self::start_with(&config.cluster, needs, kubeconfig, crds).await
    }
}

// --- policies ------------------------------------------------------------------------------

/// The policy set a configuration asks for: the built-in library (unless `builtin: false`)
/// and the configured paths (relative to `base_dir`, the configuration file's directory), or,
/// when `replace` is not empty, only the policies under those paths (`--policy`, as
/// conftest's). Enforcement overrides are applied; one that names no policy is an error.
pub fn from_config(
    config: &Config,
    base_dir: &Path,
    replace: &[PathBuf],
    rego_version: crate::policy::rego::RegoVersion,
) -> Result<PolicySet, PolicyError> {
    from_config_read(config, base_dir, replace, rego_version, read_paths)
}

/// Whether provenance is on: a repository is configured, and `provenance.enabled` is not
/// `false`.
pub fn provenance_on(config: &Config) -> bool {
    config.repository.url.is_some() && config.provenance.enabled != Some(false)
}

/// Caps the heap Rego evaluations may grow the process to (`policies.memoryLimit`, validated
/// with the configuration). The cap is regorus's: its allocator counts what the process has
/// allocated, and the interpreter checks the count as it goes (every few steps, and after
/// each 32 KiB), so that an evaluation that allocates without end stops with an error of its
/// policy (fail closed: the failure mode at admission, exit 2 in CI) and frees what it
/// held, where it would otherwise grow the process until the kernel killed it, and with it
/// every decision. It is one ceiling for the process, not a budget per evaluation: an
/// evaluation that starts while the heap is above it fails too. One built-in call that
/// allocates at once (a `numbers.range` of a billion) is not interrupted inside the call.
fn set_memory_limit(text: &str) {
    let limit = crate::config::memory_limit(text).unwrap_or(None);
    regorus::set_global_memory_limit(limit);
}

/// [`from_config`] with the configured paths read by `read` (the files of a commit, for
/// `check`, which takes its gate from the protected branch); `replace` is read by `read` too.
pub fn from_config_read(
    config: &Config,
    base_dir: &Path,
    replace: &[PathBuf],
    rego_version: crate::policy::rego::RegoVersion,
    read: impl Fn(&[PathBuf]) -> Result<Vec<SourceFile>, PolicyError>,
) -> Result<PolicySet, PolicyError> {
    let policies = &config.policies;
    set_memory_limit(&policies.memory_limit);
    let options = Options {
        eval_timeout: policies.timeout,
        rego_version,
        ..Options::default()
    };
    let mut set = PolicySet::default();
    if replace.is_empty() {
        if policies.builtin {
            set.extend(crate::builtin::policy_set(&options)?);
        }
        let paths: Vec<PathBuf> = policies.paths.iter().map(|p| base_dir.join(p)).collect();
        if !paths.is_empty() {
            set.extend(load(&read(&paths)?, &options)?);
        }
        // The provenance policy is what refuses the untraceable: with provenance on, it is
        // loaded whatever `builtin` says (only `policies.enforcement.provenance` weakens it).
        // Without it, `builtin: false` left every verdict an audit annotation.
        if !policies.builtin
            && provenance_on(config)
            && !set.policies().iter().any(|p| p.name == "provenance")
        {
            set.extend(crate::builtin::provenance_policy(&options)?);
        }
    } else {
        set.extend(load(&read(replace)?, &options)?);
    }
    if set.is_empty() && !policies.allow_empty {
        let from = if !replace.is_empty() {
            format!("--policy {}", display_paths(replace))
        } else if policies.paths.is_empty() {
            "policies.builtin is false and policies.paths names no directory".to_string()
        } else {
            format!(
                "policies.paths {}",
                display_paths(
                    &policies
                        .paths
                        .iter()
                        .map(|p| base_dir.join(p))
                        .collect::<Vec<_>>()
                )
            )
        };
        let skipped = if set.skipped.is_empty() {
            String::new()
        } else {
            match set.skipped.len() {
                1 => format!(" (one document is not a policy: {})", set.skipped[0]),
                n => format!(
                    " ({n} documents are not policies, the first: {})",
                    set.skipped[0]
                ),
            }
        };
        return Err(PolicyError::Empty(format!(
            "no policy loaded from {from}{skipped}: a gate without policies checks nothing; add policies, or set policies.allowEmpty: true to run without"
        )));
    }
    let overrides: HashMap<String, Enforcement> = policies.enforcement.clone();
    let unknown = set.override_enforcement(&overrides);
    if let Some(name) = unknown.first() {
        return Err(PolicyError::Config {
            key: format!("policies.enforcement.{name}"),
            message: format!(
                "no policy is named {name:?} (the loaded policies are: {})",
                set.policies()
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(set)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(config: &str, dir: &Path) -> Vec<String> {
        let config = Config::parse("gitgate.yaml", config).unwrap();
        let set = from_config(&config, dir, &[], Default::default()).unwrap();
        set.policies().iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn the_provenance_policy_stays_when_the_builtin_library_is_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pol")).unwrap();
        std::fs::write(
            dir.path().join("pol/mine.rego"),
            "# METADATA\n# custom:\n#   name: mine\npackage mine\nimport rego.v1\nviolation contains {\"msg\": \"x\"} if false\n",
        )
        .unwrap();
        let off = "policies: {builtin: false, paths: [pol]}\n";
        assert_eq!(
            names(off, dir.path()),
            ["mine"],
            "no repository: no provenance"
        );
        let with_repo = format!("repository: {{url: /srv/gitops}}\n{off}");
        let mut loaded = names(&with_repo, dir.path());
        loaded.sort();
        assert_eq!(
            loaded,
            ["mine", "provenance"],
            "a repository: untraceable objects are still refused"
        );
        let weakened = "repository: {url: /srv/gitops}\npolicies: {builtin: false, paths: [pol], enforcement: {provenance: warn}}\n";
        let config = Config::parse("gitgate.yaml", weakened).unwrap();
        let set = from_config(&config, dir.path(), &[], Default::default()).unwrap();
        let provenance = set
            .policies()
            .iter()
            .find(|p| p.name == "provenance")
            .unwrap();
        assert_eq!(provenance.enforcement, crate::policy::Enforcement::Warn);
        let off_too = format!("{with_repo}provenance: {{enabled: false}}\n");
        assert_eq!(names(&off_too, dir.path()), ["mine"]);
    }
}
