//! Helm: `helm template` of a chart folder, with its dependencies vendored under `charts/`
//! (checked before anything runs: a dependency that is not there is an error naming it,
//! never a pull), Helm's homes, caches and configuration files empty files of the sandbox
//! (`--repository-cache`, `--repository-config`, `--registry-config`), and each object's
//! template read from the `# Source:` comment helm writes before it.

use serde_json::Value;

use super::paths;

/// A dependency of a chart (`Chart.yaml`'s `dependencies`, or `requirements.yaml` for an
/// `apiVersion: v1` chart).
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub name: String,
    pub repository: String,
}

/// The dependencies a chart declares.
pub fn dependencies(chart_yaml: &str, requirements_yaml: Option<&str>) -> Vec<Dependency> {
    let read = |file: &str, text: &str| -> Vec<Dependency> {
        let Ok(docs) = crate::manifest::parse_str(file, text) else {
            return Vec::new();
        };
        docs.into_iter()
            .filter_map(|d| d.value.get("dependencies").cloned())
            .filter_map(|d| match d {
                Value::Array(items) => Some(items),
                _ => None,
            })
            .flatten()
            .filter_map(|d| {
                Some(Dependency {
                    name: d.get("name")?.as_str()?.to_string(),
                    repository: d
                        .get("repository")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                })
            })
            .collect()
    };
    let mut deps = read("Chart.yaml", chart_yaml);
    if let Some(text) = requirements_yaml {
        deps.extend(read("requirements.yaml", text));
    }
    deps
}

/// What in a chart's template makes its output depend on the cluster, in words (`calls lookup`,
/// `reads .Capabilities.APIVersions`), or `None`: `helm template` answers `lookup` with
/// nothing and `.Capabilities` with its own defaults, while the controller's render in the
/// cluster reads the cluster. The version (`.Capabilities.KubeVersion`, `.HelmVersion`) is
/// not counted.
pub fn reads_cluster(template: &str) -> Option<String> {
    static LOOKUP: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\{\{-?[^}]*\blookup\b").expect("a valid regex")
    });
    static CAPABILITIES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\.Capabilities\.([A-Za-z]+)").expect("a valid regex")
    });
    if LOOKUP.is_match(template) {
        return Some("calls lookup".into());
    }
    CAPABILITIES
        .captures_iter(template)
        .map(|c| c[1].to_string())
        .find(|field| field != "KubeVersion" && field != "HelmVersion")
        .map(|field| format!("reads .Capabilities.{field}"))
}

/// Whether a dependency is vendored: `charts/<name>/` (with a `Chart.yaml`) or an archive
/// `charts/<name>-<version>.tgz` among `vendored` (the paths under the chart's `charts/`).
pub fn is_vendored(dep: &Dependency, vendored: &[String]) -> bool {
    vendored.iter().any(|p| {
        p == &format!("{}/Chart.yaml", dep.name)
            || (p.starts_with(&format!("{}-", dep.name)) && p.ends_with(".tgz") && !p.contains('/'))
    })
}

/// The template each document of `helm template`'s output came from: `(line, path)` of every
/// `# Source: <chart>/<path>` comment, the path resolved in the chart's folder `dir`.
pub fn sources(dir: &str, output: &str) -> Vec<(usize, String)> {
    output
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let source = line.strip_prefix("# Source: ")?.trim();
            // The first component is the chart's name, not its folder.
            let rel = source.split_once('/').map_or(source, |(_, rest)| rest);
            Some((i + 1, paths::join(dir, rel)?))
        })
        .collect()
}

/// The template of the document that starts at `line`: the last `# Source:` before it.
pub fn source_of(sources: &[(usize, String)], line: usize) -> Option<&str> {
    sources
        .iter()
        .rev()
        .find(|(l, _)| *l < line)
        .map(|(_, p)| p.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_must_be_vendored() {
        let chart = "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n- name: redis\n  version: 1.x\n  repository: https://charts.example.com\n- name: common\n  version: 2.0.0\n  repository: oci://registry.example.com/charts\n";
        let deps = dependencies(chart, None);
        assert_eq!(deps.len(), 2);
        assert_eq!(deps[0].repository, "https://charts.example.com");
        let vendored = vec![
            "redis/Chart.yaml".to_string(),
            "redis/values.yaml".to_string(),
        ];
        assert!(is_vendored(&deps[0], &vendored));
        assert!(!is_vendored(&deps[1], &vendored));
        assert!(is_vendored(&deps[1], &["common-2.0.0.tgz".to_string()]));
    }

    #[test]
    fn source_comments_name_the_template() {
        let out = "---\n# Source: web/templates/svc.yaml\napiVersion: v1\nkind: Service\n---\n# Source: web/charts/redis/templates/cm.yaml\napiVersion: v1\n";
        let s = sources("charts/web", out);
        assert_eq!(
            s,
            vec![
                (2, "charts/web/templates/svc.yaml".to_string()),
                (6, "charts/web/charts/redis/templates/cm.yaml".to_string())
            ]
        );
        assert_eq!(source_of(&s, 3), Some("charts/web/templates/svc.yaml"));
        assert_eq!(
            source_of(&s, 7),
            Some("charts/web/charts/redis/templates/cm.yaml")
        );
        assert_eq!(source_of(&s, 1), None);
    }
}

#[cfg(test)]
mod reads_cluster_tests {
    use super::reads_cluster;

    #[test]
    fn lookup_and_capabilities_beyond_the_version() {
        assert_eq!(
            reads_cluster("{{- $s := lookup \"v1\" \"Secret\" .Release.Namespace \"x\" }}"),
            Some("calls lookup".into())
        );
        assert_eq!(
            reads_cluster("{{ if .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" }}"),
            Some("reads .Capabilities.APIVersions".into())
        );
        assert_eq!(
            reads_cluster("{{ .Capabilities.KubeVersion.Version }}"),
            None
        );
        assert_eq!(
            reads_cluster("image: {{ .Values.image }} # lookup table"),
            None
        );
    }
}
