//! What a source folder holds, as the controller sees it: the folders it renders (a
//! kustomization, a chart) and the manifests that are objects on their own.
//!
//! `auto` is Flux's kustomize-controller exactly (fluxcd/pkg's kustomize generator): a folder
//! with a kustomization is built as it is; a folder without one gets a generated kustomization
//! that lists every `.yaml`/`.yml` file under it, except that a subfolder holding a
//! kustomization is listed as a folder (built on its own, even when an overlay of the same
//! folder also uses it) and not walked. Nothing outside the folder changes what it renders: a
//! kustomization or a chart elsewhere never hides it. A chart folder inside a plain folder is
//! not templated (Flux does not run Helm there): its `Chart.yaml`, `values.yaml` and
//! templates are files like any other. The one departure: a source folder that is itself a
//! chart (`Chart.yaml` at its root) is templated, as Argo CD does; and JSON manifests are
//! read too (Argo CD applies them; Flux lists YAML only): more is checked, nothing less.

use std::collections::BTreeSet;

use gix::ObjectId;

use super::kustomize;
use super::paths;
use super::spec::Kind;
use crate::git::{Files, is_manifest_path};

/// The folders rendered and the plain manifests of one source folder, by paths relative to
/// it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovery {
    pub plain: Vec<(String, ObjectId)>,
    /// Folders rendered, with the engine ([`Kind::Kustomize`] or [`Kind::Helm`]).
    pub units: Vec<(String, Kind)>,
}

/// Discovers what a source folder of kind `kind` holds. `files` are its blobs (paths relative
/// to it).
pub fn discover(kind: Kind, files: &Files) -> Discovery {
    match kind {
        Kind::Plain => Discovery {
            plain: manifests(files, is_manifest_path),
            units: Vec::new(),
        },
        Kind::Kustomize | Kind::Helm => Discovery {
            plain: Vec::new(),
            units: vec![(String::new(), kind)],
        },
        Kind::Auto => auto(files),
    }
}

fn manifests(files: &Files, keep: impl Fn(&str) -> bool) -> Vec<(String, ObjectId)> {
    files
        .iter()
        .filter(|(p, _)| keep(p))
        .map(|(p, id)| (p.clone(), *id))
        .collect()
}

/// Whether Flux's generator lists the file: its extension is `.yaml` or `.yml` (as Go's
/// `filepath.Ext` compares it: case matters).
pub fn flux_lists(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Whether `dir` holds a kustomization among `files`.
fn has_kustomization(files: &Files, dir: &str) -> bool {
    kustomize::FILE_NAMES
        .iter()
        .any(|name| files.contains_key(&paths::child(dir, name)))
}

fn auto(files: &Files) -> Discovery {
    if has_kustomization(files, "") {
        return discover(Kind::Kustomize, files);
    }
    if files.contains_key("Chart.yaml") {
        return discover(Kind::Helm, files);
    }
    let (mut plain, units) = generated(files);
    // JSON manifests too (Argo CD applies them; Flux lists YAML only): read, not skipped.
    plain.extend(
        files
            .keys()
            .filter(|p| {
                p.to_ascii_lowercase().ends_with(".json")
                    && !units.iter().any(|d| paths::under(p, d))
            })
            .cloned(),
    );
    plain.sort();
    Discovery {
        plain: plain
            .into_iter()
            .filter_map(|p| files.get(&p).map(|id| (p, *id)))
            .collect(),
        units: units.into_iter().map(|d| (d, Kind::Kustomize)).collect(),
    }
}

/// What Flux's generated kustomization of a folder without one lists (paths relative to it):
/// the files, and the subfolders holding a kustomization (the outermost ones; nothing under
/// them is walked).
pub fn generated(files: &Files) -> (Vec<String>, Vec<String>) {
    let mut built: BTreeSet<String> = BTreeSet::new();
    for path in files.keys() {
        let mut dir = path.as_str();
        while let Some(i) = dir.rfind('/') {
            dir = &dir[..i];
            if has_kustomization(files, dir) {
                built.insert(dir.to_string());
            }
        }
    }
    let outermost: Vec<String> = built
        .iter()
        .filter(|d| !built.iter().any(|o| o != *d && paths::under(d, o)))
        .cloned()
        .collect();
    let plain = files
        .keys()
        .filter(|p| flux_lists(p) && !outermost.iter().any(|d| paths::under(p, d)))
        .cloned()
        .collect();
    (plain, outermost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn files(paths: &[(&str, &str)]) -> (Files, BTreeMap<ObjectId, String>) {
        let mut files = Files::new();
        let mut texts = BTreeMap::new();
        for (i, (p, text)) in paths.iter().enumerate() {
            let mut bytes = [0u8; 20];
            bytes[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let id = ObjectId::from_bytes_or_panic(&bytes);
            files.insert(p.to_string(), id);
            texts.insert(id, text.to_string());
        }
        (files, texts)
    }

    #[test]
    fn a_plain_folder_is_fluxs_generated_kustomization() {
        let (files, _) = files(&[
            (
                "apps/base/podinfo/kustomization.yaml",
                "resources: [release.yaml]\n",
            ),
            ("apps/base/podinfo/release.yaml", ""),
            (
                "apps/production/kustomization.yaml",
                "resources: [../base/podinfo]\npatches:\n- path: podinfo-values.yaml\n",
            ),
            ("apps/production/podinfo-values.yaml", ""),
            ("clusters/production/apps.yaml", ""),
            ("clusters/production/notes.json", ""),
            (
                "clusters/production/flux-system/kustomization.yaml",
                "resources: [gotk-sync.yaml]\n",
            ),
            ("clusters/production/flux-system/gotk-sync.yaml", ""),
            ("charts/web/Chart.yaml", ""),
            ("charts/web/values.yaml", ""),
            ("charts/web/templates/deploy.yaml", ""),
            ("README.md", ""),
        ]);
        let d = discover(Kind::Auto, &files);
        // A base is built on its own as well as through its overlay, as Flux's generated
        // kustomization lists both.
        assert_eq!(
            d.units,
            vec![
                ("apps/base/podinfo".to_string(), Kind::Kustomize),
                ("apps/production".to_string(), Kind::Kustomize),
                (
                    "clusters/production/flux-system".to_string(),
                    Kind::Kustomize
                ),
            ]
        );
        // A chart inside a plain folder is files, as Flux reads them.
        let plain: Vec<&str> = d.plain.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            plain,
            vec![
                "charts/web/Chart.yaml",
                "charts/web/templates/deploy.yaml",
                "charts/web/values.yaml",
                "clusters/production/apps.yaml",
                "clusters/production/notes.json",
            ]
        );
        // A source that is itself a kustomization is one unit.
        let (files, _) = files_under_root();
        let d = discover(Kind::Auto, &files);
        assert_eq!(d.units, vec![(String::new(), Kind::Kustomize)]);
        assert!(d.plain.is_empty());
    }

    #[test]
    fn what_a_folder_renders_depends_on_nothing_outside_the_folder_built() {
        // An empty kustomization above the folder Flux builds hides it only where the source
        // is the folder above; a decoy kustomization that refers to the folder does not.
        let (files, _) = files(&[
            ("prod/kustomization.yaml", "resources: [deploy.yaml]\n"),
            ("prod/deploy.yaml", ""),
            (
                "docs/example/kustomization.yaml",
                "resources: [../../prod]\npatches: []\n",
            ),
        ]);
        let d = discover(Kind::Auto, &files);
        assert_eq!(
            d.units,
            vec![
                ("docs/example".to_string(), Kind::Kustomize),
                ("prod".to_string(), Kind::Kustomize),
            ]
        );
    }

    fn files_under_root() -> (Files, BTreeMap<ObjectId, String>) {
        files(&[
            ("kustomization.yaml", "resources: [a.yaml, sub]\n"),
            ("a.yaml", ""),
            ("sub/kustomization.yaml", ""),
        ])
    }

    #[test]
    fn plain_and_forced_kinds() {
        let (files, _) = files_under_root();
        let d = discover(Kind::Plain, &files);
        assert_eq!(d.plain.len(), 3);
        let d = discover(Kind::Helm, &files);
        assert_eq!(d.units, vec![(String::new(), Kind::Helm)]);
    }
}
