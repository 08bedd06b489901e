//! `gitgate config check` and `gitgate config schema` on the real binary: a valid file is
//! `FILE: ok` (exit 0), an invalid one its error with file, line and key (exit 2); the JSON
//! Schema validates the README's example configuration and the chart's default one, and
//! rejects a typo'd key as gitgate does (checked with Python's `jsonschema`, draft 2020-12,
//! where it is installed: `.ci/run` installs it).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::gitgate;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The example configuration of the README's "Configuration" section.
fn readme_config() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("a Configuration section");
    let block = section.split("```yaml\n").nth(1).expect("a yaml block");
    block.split("\n```").next().unwrap().to_string() + "\n"
}

/// The gitgate.yaml the chart renders with its default values (real Helm, or the stand-in on
/// Helm's engine); else, with a message, the chart's `config` values as they are (which the
/// chart writes into gitgate.yaml).
fn chart_config() -> String {
    let chart = root().join("charts/gitgate");
    if let Some(helm) = support::engines::helm() {
        let mut command = Command::new(&helm);
        command.args([
            "template",
            "gg",
            chart.to_str().unwrap(),
            "--namespace",
            "gitgate-system",
        ]);
        if !helm.ends_with("helm_stand_in.py") {
            command.args(["--kube-version", "1.33.0"]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let docs = gitgate::manifest::parse_str("helm template", &text).unwrap();
        let config = docs
            .iter()
            .find_map(|d| d.value["data"]["gitgate.yaml"].as_str())
            .expect("the chart's ConfigMap holds gitgate.yaml");
        return config.to_string();
    }
    eprintln!("note: the chart's config values are checked as they are, not rendered");
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    let mut config = values["config"].clone();
    // The chart leaves an empty url out of gitgate.yaml.
    if config["repository"]["url"] == "" {
        config["repository"].as_object_mut().unwrap().remove("url");
    }
    serde_json::to_string(&config).unwrap()
}

fn yaml_to_json(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn config_check_says_ok_or_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), readme_config()).unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        "repository:\n  branch: main\n  pahts: [clusters]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("zero.yaml"), "server:\n  timeout: 0s\n").unwrap();

    let (code, out, err) = gitgate(dir.path(), &["config", "check", "good.yaml"]);
    assert_eq!((code, out.as_str()), (0, "good.yaml: ok\n"), "{err}");
    let (code, out, err) = gitgate(dir.path(), &["config", "check", "typo.yaml"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with("typo.yaml:3:") && err.contains("pahts"),
        "{err}"
    );
    let (code, _, err) = gitgate(dir.path(), &["config", "check", "zero.yaml"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("zero.yaml:2: server.timeout"), "{err}");
    // Several files: each is said; one bad file is exit 2.
    let (code, out, err) = gitgate(
        dir.path(),
        &["config", "check", "good.yaml", "typo.yaml", "missing.yaml"],
    );
    assert_eq!(code, 2);
    assert_eq!(out, "good.yaml: ok\n");
    assert!(
        err.contains("typo.yaml:3:") && err.contains("missing.yaml: cannot read"),
        "{err}"
    );
    // Without a file: -c, else gitgate.yaml, which must exist.
    let (code, out, _) = gitgate(dir.path(), &["-c", "good.yaml", "config", "check"]);
    assert_eq!((code, out.as_str()), (0, "good.yaml: ok\n"));
    let (code, _, err) = gitgate(dir.path(), &["config", "check"]);
    assert_eq!(code, 2);
    assert!(err.contains("gitgate.yaml: cannot read"), "{err}");
    // The chart's default configuration is valid.
    std::fs::write(dir.path().join("chart.yaml"), chart_config()).unwrap();
    let (code, out, err) = gitgate(dir.path(), &["config", "check", "chart.yaml"]);
    assert_eq!((code, out.as_str()), (0, "chart.yaml: ok\n"), "{err}");
}

/// A Python with jsonschema, or None (the test then says why it skips).
fn python_with_jsonschema() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import jsonschema; jsonschema.Draft202012Validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipping: python3 with jsonschema (draft 2020-12) is not installed (.ci/run installs it)"
        );
    }
    ok.then_some("python3")
}

/// Each document validated against `schema`: `None` when valid, else the validator's messages.
fn validate(dir: &Path, schema: &Value, docs: &[Value]) -> Option<Vec<Option<String>>> {
    let python = python_with_jsonschema()?;
    let schema_file = dir.join("schema.json");
    std::fs::write(&schema_file, schema.to_string()).unwrap();
    let mut files = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let file = dir.join(format!("doc{i}.json"));
        std::fs::write(&file, doc.to_string()).unwrap();
        files.push(file);
    }
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(schema)\n\
                  v = jsonschema.Draft202012Validator(schema)\n\
                  for path in sys.argv[2:]:\n\
                  \x20   errors = [e.message for e in v.iter_errors(json.load(open(path)))]\n\
                  \x20   print(json.dumps('; '.join(errors) if errors else None))\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&schema_file)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Option<String>>(l).unwrap())
            .collect(),
    )
}

#[test]
fn the_schema_validates_the_documented_configurations_and_rejects_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = gitgate(dir.path(), &["config", "schema"]);
    assert_eq!(code, 0, "{err}");
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);

    let readme = yaml_to_json(&readme_config());
    let chart = yaml_to_json(&chart_config());
    let mut typo = readme.clone();
    let repository = typo["repository"].as_object_mut().unwrap();
    let paths = repository.remove("paths").unwrap();
    repository.insert("pahts".into(), paths);
    let mut nested_typo = readme.clone();
    nested_typo["repository"]["sources"][0]["rendr"] = "auto".into();
    let mut bad_value = readme.clone();
    bad_value["server"]["failureMode"] = "block".into();
    let mut bad_duration = readme.clone();
    bad_duration["server"]["timeout"] = 2500.into();

    let Some(results) = validate(
        dir.path(),
        &schema,
        &[readme, chart, typo, nested_typo, bad_value, bad_duration],
    ) else {
        return;
    };
    assert_eq!(results[0], None, "the README's configuration");
    assert_eq!(results[1], None, "the chart's default configuration");
    for (i, word) in [(2, "pahts"), (3, "rendr"), (4, "block"), (5, "2500")] {
        let message = results[i]
            .as_deref()
            .unwrap_or_else(|| panic!("{word} is refused"));
        assert!(message.contains(word), "{message}");
    }
}
