//! What a source folder holds, as the controller sees it: the folders it renders (a
//! kustomization, a chart) and the manifests that are objects on their own.
//!
//! `auto` follows Flux's kustomize-controller, which generates a kustomization for a folder
//! that has none: every manifest under the folder, except that a subfolder holding a
//! kustomization is built as one (and not walked), and here a subfolder holding `Chart.yaml`
//! is templated as one. What a kustomization found in the walk refers to (its bases, its
//! patches, its resources) is not rendered or read on its own: a base is only applied through
//! the overlays that build it, and a patch is never an object.

use std::collections::{BTreeMap, BTreeSet};

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
/// to it); `read` gives a kustomization's text.
pub fn discover(
    kind: Kind,
    files: &Files,
    read: &dyn Fn(&str, ObjectId) -> Option<String>,
) -> Discovery {
    match kind {
        Kind::Plain => Discovery {
            plain: manifests(files, |_| true),
            units: Vec::new(),
        },
        Kind::Kustomize | Kind::Helm => Discovery {
            plain: Vec::new(),
            units: vec![(String::new(), kind)],
        },
        Kind::Auto => auto(files, read),
    }
}

fn manifests(files: &Files, keep: impl Fn(&str) -> bool) -> Vec<(String, ObjectId)> {
    files
        .iter()
        .filter(|(p, _)| is_manifest_path(p) && keep(p))
        .map(|(p, id)| (p.clone(), *id))
        .collect()
}

/// The kustomization file of `dir` among `files`, if any.
fn kustomization<'a>(files: &'a Files, dir: &str) -> Option<(String, &'a ObjectId)> {
    kustomize::FILE_NAMES.iter().find_map(|name| {
        let path = paths::child(dir, name);
        files.get(&path).map(|id| (path, id))
    })
}

fn auto(files: &Files, read: &dyn Fn(&str, ObjectId) -> Option<String>) -> Discovery {
    // Every folder that holds a kustomization or a chart.
    let mut candidates: BTreeMap<String, Kind> = BTreeMap::new();
    for path in files.keys() {
        let (dir, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path.as_str()),
        };
        if kustomize::FILE_NAMES.contains(&name) {
            candidates.insert(dir.to_string(), Kind::Kustomize);
        } else if name == "Chart.yaml" {
            candidates.entry(dir.to_string()).or_insert(Kind::Helm);
        }
    }
    // The outermost ones are rendered; what is inside them is theirs.
    let roots: Vec<(String, Kind)> = candidates
        .iter()
        .filter(|(dir, _)| {
            !candidates
                .keys()
                .any(|other| other != *dir && paths::under(dir, other))
        })
        .map(|(d, k)| (d.clone(), *k))
        .collect();
    // What the kustomizations refer to: folders (bases, components) and files.
    let mut referenced_dirs = BTreeSet::new();
    let mut referenced_files = BTreeSet::new();
    let mut queue: Vec<String> = roots
        .iter()
        .filter(|(_, k)| *k == Kind::Kustomize)
        .map(|(d, _)| d.clone())
        .collect();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    while let Some(dir) = queue.pop() {
        let Some((file, blob)) = kustomization(files, &dir) else {
            continue;
        };
        let Some(scan) = read(&file, *blob).and_then(|text| kustomize::scan(&file, &text).ok())
        else {
            continue;
        };
        for r in &scan.references {
            let Some(target) = paths::join(&dir, &r.raw) else {
                continue;
            };
            if files.contains_key(&target) {
                referenced_files.insert(target);
            } else if r.may_be_folder && kustomization(files, &target).is_some() {
                referenced_dirs.insert(target.clone());
                if seen.insert(target.clone()) {
                    queue.push(target);
                }
            }
        }
    }
    let plain = manifests(files, |p| {
        !referenced_files.contains(p) && !roots.iter().any(|(d, _)| paths::under(p, d))
    });
    let units = roots
        .into_iter()
        .filter(|(d, _)| !referenced_dirs.contains(d))
        .collect();
    Discovery { plain, units }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_flux_layout_renders_overlays_not_their_bases() {
        let (files, texts) = files(&[
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
        let read = |_: &str, id: ObjectId| texts.get(&id).cloned();
        let d = discover(Kind::Auto, &files, &read);
        assert_eq!(
            d.units,
            vec![
                ("apps/production".to_string(), Kind::Kustomize),
                ("charts/web".to_string(), Kind::Helm),
                (
                    "clusters/production/flux-system".to_string(),
                    Kind::Kustomize
                ),
            ]
        );
        let plain: Vec<&str> = d.plain.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(plain, vec!["clusters/production/apps.yaml"]);
        // A source that is itself a kustomization is one unit.
        let (files, texts) = files_under_root();
        let read = |_: &str, id: ObjectId| texts.get(&id).cloned();
        let d = discover(Kind::Auto, &files, &read);
        assert_eq!(d.units, vec![(String::new(), Kind::Kustomize)]);
        assert!(d.plain.is_empty());
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
        let none = |_: &str, _: ObjectId| None;
        let d = discover(Kind::Plain, &files, &none);
        assert_eq!(d.plain.len(), 3);
        let d = discover(Kind::Helm, &files, &none);
        assert_eq!(d.units, vec![(String::new(), Kind::Helm)]);
    }
}
