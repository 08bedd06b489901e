//! Kustomize: what a kustomization refers to (read before anything runs, to refuse what would
//! reach the network or leave the repository), the command line, and where each object of the
//! build came from (kustomize's origin annotations).
//!
//! The build runs `kustomize build DIR` or `kubectl kustomize DIR` with
//! `--load-restrictor LoadRestrictionsRootOnly` and none of `--enable-exec`,
//! `--enable-alpha-plugins`, `--enable-helm`, `--network`. Before it runs:
//! - remote bases, resources and components (`https://...`, `github.com/...`, `git::...`,
//!   `?ref=`) are refused, as are references that leave the repository;
//! - generators, transformers and validators must be kustomize's built-in plugins
//!   (`apiVersion: builtin`): a KRM function (exec or container) or a legacy plugin is
//!   refused, and so is a folder of plugin configurations (what it builds cannot be known
//!   before building it) and `helmCharts` (kustomize would run helm and pull the chart: make
//!   the chart a `helm` source instead).
//!
//! The copy of the top kustomization in the temporary checkout gets
//! `buildMetadata: [originAnnotations]`, so that every object says the file it came from
//! (`config.kubernetes.io/origin`, relative to the top kustomization's folder); the annotation
//! is removed before the object goes anywhere, unless the kustomization asked for it itself
//! (then the controller applies it too).

use serde_json::Value;

use super::paths;

/// The names kustomize recognizes, in the order it looks for them.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The annotation kustomize's `originAnnotations` writes.
pub const ORIGIN: &str = "config.kubernetes.io/origin";

/// A reference of a kustomization to another path.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The field it is written in (`resources`, `patches`, ...).
    pub field: &'static str,
    pub raw: String,
    /// A field whose entries may be folders (another kustomization): resources, bases,
    /// components.
    pub may_be_folder: bool,
}

/// What a kustomization file says about the paths it reads and the programs it would run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    pub references: Vec<Reference>,
    /// Entries of `generators`, `transformers` and `validators`, with their field.
    pub plugins: Vec<(&'static str, String)>,
    /// `helmCharts`, `helmChartInflationGenerator` or `helmGlobals` is set.
    pub helm_charts: bool,
    /// The kustomization itself asks for `buildMetadata: [originAnnotations]`.
    pub origin_annotations: bool,
}

/// Reads a kustomization's references. `file` names it in errors.
pub fn scan(file: &str, text: &str) -> Result<Scan, String> {
    let docs = crate::manifest::parse_str(file, text).map_err(|e| e.to_string())?;
    let Some(doc) = docs.into_iter().find(|d| !d.value.is_null()) else {
        return Ok(Scan::default());
    };
    let Value::Object(k) = doc.value else {
        return Err(format!("{file}: not a mapping"));
    };
    let mut scan = Scan::default();
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let mut push = |field: &'static str, raw: String, may_be_folder: bool| {
        scan.references.push(Reference {
            field,
            raw,
            may_be_folder,
        })
    };
    for field in ["resources", "bases", "components"] {
        for raw in strings(k.get(field)) {
            push(field, raw, true);
        }
    }
    for field in ["crds", "configurations"] {
        for raw in strings(k.get(field)) {
            push(field, raw, false);
        }
    }
    for raw in strings(k.get("patchesStrategicMerge")) {
        // An inline patch is YAML text, not a path.
        if !raw.contains('\n') {
            push("patchesStrategicMerge", raw, false);
        }
    }
    for field in ["patches", "patchesJson6902", "replacements"] {
        if let Some(Value::Array(items)) = k.get(field) {
            for item in items {
                if let Some(path) = item.get("path").and_then(Value::as_str) {
                    push(field, path.to_string(), false);
                }
            }
        }
    }
    if let Some(path) = k
        .get("openapi")
        .and_then(|o| o.get("path"))
        .and_then(Value::as_str)
    {
        push("openapi", path.to_string(), false);
    }
    for field in ["configMapGenerator", "secretGenerator"] {
        if let Some(Value::Array(items)) = k.get(field) {
            for item in items {
                for f in strings(item.get("files")) {
                    // `key=path` or `path`.
                    let path = f.split_once('=').map_or(f.as_str(), |(_, p)| p);
                    push(field, path.to_string(), false);
                }
                for e in strings(item.get("envs"))
                    .into_iter()
                    .chain(strings(item.get("env")))
                {
                    push(field, e, false);
                }
            }
        }
    }
    for field in ["generators", "transformers", "validators"] {
        for raw in strings(k.get(field)) {
            scan.plugins.push((field, raw));
        }
    }
    scan.helm_charts = ["helmCharts", "helmChartInflationGenerator", "helmGlobals"]
        .iter()
        .any(|f| k.get(*f).is_some_and(|v| !v.is_null()));
    scan.origin_annotations = strings(k.get("buildMetadata"))
        .iter()
        .any(|m| m == "originAnnotations");
    Ok(scan)
}

/// Whether a reference names something remote (kustomize's remote targets: URLs, go-getter
/// and SCP-like Git addresses, `host.tld/org/repo` paths).
pub fn is_remote(raw: &str) -> bool {
    let r = raw.trim();
    if r.contains("://")
        || r.starts_with("git::")
        || r.starts_with("git@")
        || r.contains("?ref=")
        || r.contains("?version=")
        || r.contains(".git//")
        || r.ends_with(".git")
    {
        return true;
    }
    // `github.com/org/repo/path`: a first component that looks like a host name.
    let first = r.split('/').next().unwrap_or("");
    let has_more = r.contains('/');
    has_more
        && first.contains('.')
        && !first.starts_with('.')
        && !is_file_name(first)
        && first
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

fn is_file_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".yaml", ".yml", ".json", ".env", ".txt", ".properties"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// The problem of a plugin configuration document (a generator's, transformer's or
/// validator's), if it would run anything but a built-in plugin.
pub fn plugin_problem(doc: &Value) -> Option<String> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let annotations = doc.pointer("/metadata/annotations");
    for key in [
        "config.kubernetes.io/function",
        "config.k8s.io/function",
        "config.kubernetes.io/local-config-function",
    ] {
        if annotations.and_then(|a| a.get(key)).is_some() {
            return Some(format!(
                "{kind} {name} is a KRM function ({key}: an exec or container plugin)"
            ));
        }
    }
    match doc.get("apiVersion").and_then(Value::as_str) {
        Some("builtin") => None,
        other => Some(format!(
            "{kind} {name} is not a built-in plugin (apiVersion {}: an external plugin)",
            other.unwrap_or("missing")
        )),
    }
}

/// The user's kustomization with `buildMetadata: [originAnnotations]` added **as a line at
/// its end**, the rest of its text untouched (never re-written through gitgate's YAML reader,
/// which could read a merge key or a tag otherwise than kustomize does); `None` when that
/// cannot be done safely (the root is not a block mapping, the file holds more than one
/// document or ends with `...`, `buildMetadata` is already set): the build then runs on the
/// file as it is, without origin annotations (findings point at the kustomization).
pub fn with_origin_annotations(text: &str) -> Option<String> {
    use granit_parser::{Event, Parser, StructureStyle};
    let (mut documents, mut depth, mut expect_key) = (0, 0usize, true);
    let mut root_block = None;
    for event in Parser::new_from_str(text) {
        let (event, _) = event.ok()?;
        match event {
            Event::DocumentStart(..) => documents += 1,
            Event::MappingStart(style, ..) | Event::SequenceStart(style, ..) => {
                if depth == 0 {
                    let is_mapping = matches!(event, Event::MappingStart(..));
                    root_block = Some(is_mapping && style == StructureStyle::Block);
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    expect_key = true;
                }
            }
            Event::Scalar(value, ..) if depth == 1 => {
                if expect_key && value == "buildMetadata" {
                    return None;
                }
                expect_key = !expect_key;
            }
            Event::Alias(_) if depth == 1 => expect_key = !expect_key,
            _ => {}
        }
    }
    if documents > 1 || root_block != Some(true) || text.trim_end().ends_with("...") {
        return None;
    }
    let mut out = text.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("buildMetadata: [originAnnotations]\n");
    Some(out)
}

/// Where an object of a build came from, read from its origin annotation: the file (a
/// repository path) and, for a generated object, the generator's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    File(String),
    Generated { file: String, generator: String },
}

/// The origin an object's annotation names, resolved from the top kustomization's folder
/// `dir`.
pub fn origin(dir: &str, object: &Value) -> Option<Origin> {
    let text = object
        .pointer("/metadata/annotations")?
        .get(ORIGIN)?
        .as_str()?;
    let value: Value = serde_saphyr::from_str(text).ok()?;
    if let Some(path) = value.get("path").and_then(Value::as_str) {
        return Some(Origin::File(paths::join(dir, path)?));
    }
    let file = value.get("configuredIn").and_then(Value::as_str)?;
    let generator = value
        .pointer("/configuredBy/kind")
        .and_then(Value::as_str)
        .unwrap_or("generator")
        .to_string();
    Some(Origin::Generated {
        file: paths::join(dir, file)?,
        generator,
    })
}

/// Removes the origin annotation (and `annotations` when it leaves it empty).
pub fn strip_origin(object: &mut Value) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let empty = match meta.get_mut("annotations").and_then(Value::as_object_mut) {
        Some(a) => {
            a.remove(ORIGIN);
            a.is_empty()
        }
        None => false,
    };
    if empty {
        meta.remove("annotations");
    }
}

/// kubectl's words around an engine error (`E1125 ... run.go:72] "command failed"
/// err="..."`) peeled off, leaving kustomize's message.
pub fn message(stderr: &str) -> String {
    if let Some(start) = stderr.find("err=\"") {
        let rest = &stderr[start + 5..];
        let end = rest.rfind('"').unwrap_or(rest.len());
        return rest[..end].replace("\\\"", "\"").replace("\\n", " ");
    }
    stderr.trim_start_matches("Error: ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_references_are_recognized() {
        for r in [
            "https://github.com/org/repo//deploy?ref=v1",
            "github.com/org/repo/deploy?ref=main",
            "github.com/org/repo/deploy",
            "git::https://example.com/repo.git",
            "git@github.com:org/repo.git",
            "ssh://git@example.com/repo",
            "example.com/org/repo/base",
        ] {
            assert!(is_remote(r), "{r}");
        }
        for r in [
            "../base",
            "deploy.yaml",
            "./x/y.yml",
            "a.b/c",
            "base/v1.2/x",
        ] {
            assert!(!is_remote(r), "{r}");
        }
    }

    #[test]
    fn scan_reads_every_path_field() {
        let text = "resources: [../base, ns.yaml]\ncomponents: [../c]\npatches:\n- path: p.yaml\n- patch: |-\n    x\npatchesStrategicMerge: [s.yaml, \"a: b\\nc: d\"]\nconfigMapGenerator:\n- name: x\n  files: [k=f.txt, g.txt]\n  envs: [e.env]\ngenerators: [gen.yaml]\nhelmCharts: [{name: x}]\n";
        let s = scan("k.yaml", text).unwrap();
        let refs: Vec<(&str, &str, bool)> = s
            .references
            .iter()
            .map(|r| (r.field, r.raw.as_str(), r.may_be_folder))
            .collect();
        assert_eq!(
            refs,
            vec![
                ("resources", "../base", true),
                ("resources", "ns.yaml", true),
                ("components", "../c", true),
                ("patchesStrategicMerge", "s.yaml", false),
                ("patches", "p.yaml", false),
                ("configMapGenerator", "f.txt", false),
                ("configMapGenerator", "g.txt", false),
                ("configMapGenerator", "e.env", false),
            ]
        );
        assert_eq!(s.plugins, vec![("generators", "gen.yaml".to_string())]);
        assert!(s.helm_charts && !s.origin_annotations);
    }

    #[test]
    fn plugins_must_be_builtin() {
        assert!(plugin_problem(&json!({"apiVersion": "builtin", "kind": "PatchTransformer", "metadata": {"name": "p"}})).is_none());
        let exec = json!({"apiVersion": "example.com/v1", "kind": "Gen", "metadata": {"name": "g",
            "annotations": {"config.kubernetes.io/function": "exec:\n  path: ./gen.sh\n"}}});
        assert!(plugin_problem(&exec).unwrap().contains("KRM function"));
        let legacy = json!({"apiVersion": "someteam.example.com/v1", "kind": "ChartInflator", "metadata": {"name": "c"}});
        assert!(plugin_problem(&legacy).unwrap().contains("external plugin"));
    }

    #[test]
    fn origins_resolve_from_the_top_kustomization() {
        let o = json!({"metadata": {"annotations": {ORIGIN: "path: ../../common/ns.yaml\n", "keep": "1"}}});
        assert_eq!(
            origin("apps/prod", &o),
            Some(Origin::File("common/ns.yaml".into()))
        );
        let g = json!({"metadata": {"annotations": {ORIGIN: "configuredIn: kustomization.yaml\nconfiguredBy:\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n"}}});
        assert_eq!(
            origin("apps/prod", &g),
            Some(Origin::Generated {
                file: "apps/prod/kustomization.yaml".into(),
                generator: "ConfigMapGenerator".into()
            })
        );
        let mut stripped = o.clone();
        strip_origin(&mut stripped);
        assert_eq!(
            stripped,
            json!({"metadata": {"annotations": {"keep": "1"}}})
        );
        let mut g = g;
        strip_origin(&mut g);
        assert_eq!(g, json!({"metadata": {}}));
    }

    #[test]
    fn kubectl_words_are_peeled_off() {
        let e = r#"E1125 16:59:25.583903    5118 run.go:72] "command failed" err="loading generator plugins: external plugins disabled; unable to load external plugin 'Gen'""#;
        assert_eq!(
            message(e),
            "loading generator plugins: external plugins disabled; unable to load external plugin 'Gen'"
        );
        assert_eq!(
            message("Error: accumulating resources"),
            "accumulating resources"
        );
    }
}
