//! The Helm chart in `charts/gitgate`: `Chart.yaml` and `values.yaml` parse, and every
//! `.Values.a.b` path the templates use exists in `values.yaml` (a typo there renders as
//! nothing, silently). Rendering with `helm template` is tested where helm is installed.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/gitgate")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn chart_and_values_parse() {
    let chart_yaml = yaml(&chart().join("Chart.yaml"));
    assert_eq!(chart_yaml["apiVersion"], "v2");
    assert_eq!(chart_yaml["name"], "gitgate");
    let values = yaml(&chart().join("values.yaml"));
    assert!(values.is_object());
}

/// Every `.Values.x.y...` reference in a template, with the file it is in.
fn value_paths() -> Vec<(String, String)> {
    let re = regex::Regex::new(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(chart().join("templates")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for c in re.captures_iter(&text) {
            out.push((path.display().to_string(), c[1].to_string()));
        }
    }
    out
}

#[test]
fn every_values_path_in_the_templates_exists() {
    let values = yaml(&chart().join("values.yaml"));
    let paths = value_paths();
    assert!(paths.len() > 20, "templates use .Values: {}", paths.len());
    let mut missing = Vec::new();
    for (file, path) in &paths {
        let mut node = &values;
        for key in path.trim_start_matches('.').split('.') {
            match node.get(key) {
                Some(next) => node = next,
                None => {
                    missing.push(format!("{file}: .Values{path}"));
                    break;
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths missing from values.yaml:\n{}",
        missing.join("\n")
    );
}

#[test]
fn helm_template_renders_objects() {
    if std::process::Command::new("helm")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipping: helm is not installed on this machine");
        return;
    }
    for extra in [&[][..], &["--set", "certManager.enabled=false"][..]] {
        let out = std::process::Command::new("helm")
            .args([
                "template",
                "gg",
                chart().to_str().unwrap(),
                "--namespace",
                "gitgate-system",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        assert!(
            docs.iter()
                .all(|d| d["kind"].is_string() && d["apiVersion"].is_string())
        );
        let webhook = docs
            .iter()
            .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
            .expect("a webhook configuration");
        let hook = &webhook["webhooks"][0];
        assert_eq!(hook["clientConfig"]["service"]["path"], "/validate");
        let excluded = hook["namespaceSelector"].to_string();
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "gitgate-system",
        ] {
            assert!(excluded.contains(ns), "{ns} excluded: {excluded}");
        }
    }
}
