//! Each command: what was typed and the configuration turned into the command's settings,
//! the door called, its result printed (the printers live in `report/`) and its exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use regex::Regex;

use super::flags::{DataFormat, TestFormat};
use super::{Printed, finish, load_config, use_color};
use crate::check::Target;
use crate::config::Config;
use crate::decision::suite;
use crate::policy::rego::RegoVersion;
use crate::policy::unit::{self, Outcome};
use crate::policy::{self, Options};

/// What `gitgate check` was given.
pub struct CheckArgs {
    pub paths: Vec<PathBuf>,
    pub repo: PathBuf,
    pub base: Option<String>,
    pub head: Option<String>,
    pub printed: Printed,
    pub policy: Vec<PathBuf>,
    pub trust_head: bool,
    pub kubeconfig: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub rego_version: RegoVersion,
    pub conftest: super::flags::ConftestFlags,
}

/// `gitgate check`: the gate (configuration and policies) from the protected branch in range
/// mode, or from the configuration given; then the check and its report.
pub fn check(args: CheckArgs) -> ExitCode {
    let range = args.paths.is_empty() || args.base.is_some() || args.head.is_some();
    if !range && conftest_files(&args) {
        return conftest_check(args);
    }
    let (mut config, set, target, gate_items) = if range && !args.trust_head {
        // The gate comes from the protected branch, not from the pull request.
        let options = crate::check::gate::Options {
            repo: &args.repo,
            config_file: args.config.as_deref(),
            base: args.base.as_deref(),
            head: args.head.as_deref(),
            policy_override: &args.policy,
            rego_version: args.rego_version,
        };
        let gate = match crate::check::gate::from_base(&options) {
            Ok(gate) => gate,
            Err(e) => {
                eprintln!("gitgate check: {e}");
                return ExitCode::from(2);
            }
        };
        // The gate resolved the range: the check reads it as resolved.
        let target = Target::Resolved {
            repo: args.repo.clone(),
            base: gate.base,
            head: gate.head,
            head_label: args.head.clone().unwrap_or_else(|| "HEAD".into()),
        };
        (gate.config, gate.policies, target, gate.items)
    } else {
        // In range mode, `--repo X` finds `X/gitgate.yaml`.
        let default_file = range.then(|| args.repo.join("gitgate.yaml"));
        let file = args.config.as_deref().or(default_file.as_deref());
        let (config, dir) = match load_config(file) {
            Ok(c) => c,
            Err(code) => return code,
        };
        let set = match crate::setup::from_config(&config, &dir, &args.policy, args.rego_version) {
            Ok(set) => set,
            Err(e @ policy::PolicyError::Config { .. }) => {
                let name = file.map_or_else(|| "gitgate.yaml".into(), |f| f.display().to_string());
                eprintln!("gitgate check: {name}: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("gitgate check: {e}");
                return ExitCode::from(2);
            }
        };
        let target = if range {
            Target::Range {
                repo: args.repo.clone(),
                base: args.base.clone(),
                head: args.head.clone(),
            }
        } else {
            Target::Files(args.paths.clone())
        };
        (config, set, target, Vec::new())
    };
    let roots_from_arguments =
        matches!(target, Target::Range { .. } | Target::Resolved { .. }) && !args.paths.is_empty();
    if roots_from_arguments {
        config.repository.paths = args.paths.iter().map(|p| p.display().to_string()).collect();
    }
    set.log_skipped();
    run_check(
        &target,
        &config,
        &set,
        gate_items,
        args.printed,
        roots_from_arguments,
        args.kubeconfig.as_deref(),
    )
}

/// Runs a check with its gate loaded, adds what was found about the gate itself, and
/// writes the report.
fn run_check(
    target: &Target,
    config: &Config,
    set: &policy::PolicySet,
    gate_items: Vec<crate::check::Item>,
    Printed {
        format,
        fail_on_warn,
        color,
    }: Printed,
    roots_from_arguments: bool,
    kubeconfig: Option<&std::path::Path>,
) -> ExitCode {
    let cluster_namespaces = match kubeconfig {
        Some(path) => match crate::check::cluster_namespaces(&config.cluster, path) {
            Ok(table) => Some(table),
            Err(e) => {
                eprintln!("gitgate check: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let extras = crate::check::Extras {
        cluster_namespaces: cluster_namespaces.as_ref(),
        gate_items,
        fail_on_warn,
    };
    let report = match crate::check::run_with(target, set, config, extras) {
        Ok(r) => r,
        Err(e) if roots_from_arguments => {
            eprintln!("gitgate check: {}", e.roots_from_arguments());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("gitgate check: {e}");
            return ExitCode::from(2);
        }
    };
    let color = use_color(color);
    let mut out = std::io::stdout().lock();
    let written = crate::report::write(format, &report, color, &mut out).and_then(|()| out.flush());
    finish("check", written, report.exit_code())
}

/// `gitgate audit`: the report in the `check` formats, with the `check` exit codes.
pub fn audit(
    config: &Config,
    dir: &std::path::Path,
    policy: &[PathBuf],
    rego_version: RegoVersion,
    kubeconfig: Option<&std::path::Path>,
    Printed {
        format,
        fail_on_warn,
        color,
    }: Printed,
) -> ExitCode {
    let set = match crate::setup::from_config(config, dir, policy, rego_version) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("gitgate audit: {e}");
            return ExitCode::from(2);
        }
    };
    set.log_skipped();
    let mut report = match crate::audit::audit(config, &set, kubeconfig) {
        Ok(outcome) => outcome.report,
        Err(e) => {
            eprintln!("gitgate audit: {e}");
            return ExitCode::from(2);
        }
    };
    report.fail_on_warn = fail_on_warn;
    let mut out = std::io::stdout().lock();
    let written = crate::report::write(format, &report, use_color(color), &mut out)
        .and_then(|()| out.flush());
    finish("audit", written, report.exit_code())
}

/// `gitgate serve`: the webhook on its own multi-threaded runtime.
pub fn serve(
    config: Config,
    config_dir: &std::path::Path,
    rego_version: RegoVersion,
    kubeconfig: Option<&std::path::Path>,
) -> ExitCode {
    match crate::serve::setup::serve(&config, config_dir, rego_version, kubeconfig) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitgate serve: {e}");
            ExitCode::from(2)
        }
    }
}

/// What `gitgate verify` was given beside the paths.
pub struct VerifyArgs<'a> {
    pub verbose: bool,
    /// Only tests (or cases) whose name matches.
    pub run: Option<&'a str>,
    pub output: DataFormat,
}

pub fn verify(paths: &[PathBuf], args: &VerifyArgs<'_>, options: &Options) -> ExitCode {
    let filter = match args.run.map(Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gitgate verify: invalid --run expression: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match suite::find_suites(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gitgate verify: {e}");
            return ExitCode::from(2);
        }
    };
    if files.is_empty() {
        eprintln!("gitgate verify: no suite (kind: Suite) found under the given paths");
        return ExitCode::from(2);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = suite::run_suites(&files, options, threads);
    if let Some(re) = &filter {
        // gator's --run: a test whose name matches, with all its cases, or the cases that do.
        for r in &mut results {
            r.tests.retain_mut(|t| {
                if !re.is_match(&t.name) {
                    t.cases.retain(|c| re.is_match(&c.name));
                    return !t.cases.is_empty();
                }
                true
            });
        }
        results.retain(|r| r.error.is_some() || !r.tests.is_empty());
        if results.is_empty() {
            eprintln!(
                "gitgate verify: no test or case matches --run {}",
                args.run.unwrap_or_default()
            );
            return ExitCode::from(2);
        }
    }
    let (mut tests, mut cases, mut failed, mut errors) = (0, 0, 0, 0);
    for r in &results {
        let (t, c) = r.counts();
        tests += t;
        cases += c;
        failed += usize::from(r.has_failures());
        errors += usize::from(r.has_errors());
    }
    let code = if errors > 0 {
        2
    } else if failed > 0 {
        1
    } else {
        0
    };
    let mut out = std::io::stdout().lock();
    let written = match args.output {
        DataFormat::Text => crate::report::commands::suites(
            &mut out,
            &results,
            args.verbose,
            (tests, cases, failed, errors),
        ),
        format => crate::report::commands::write_data(
            &mut out,
            &crate::report::commands::suites_value(&results),
            format == DataFormat::Yaml,
        ),
    }
    .and_then(|()| out.flush());
    finish("verify", written, code)
}

/// What `gitgate test` was given beside the paths.
pub struct TestArgs<'a> {
    pub run: Option<&'a str>,
    pub verbose: bool,
    pub format: TestFormat,
    pub coverage: bool,
    /// With `coverage`: the least total coverage (%) that passes.
    pub threshold: f64,
    /// Globs of file and directory names to leave out (OPA's `--ignore`).
    pub ignore: &'a [String],
}

/// `gitgate test`: 0 when every test passes (skipped `todo_` tests do not count), 1 when one
/// fails, 2 when one errors, a file does not compile (the others still run), or no test is
/// found.
pub fn test(paths: &[PathBuf], args: &TestArgs<'_>, options: &Options) -> ExitCode {
    let filter = match args.run.map(Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gitgate test: invalid --run expression: {e}");
            return ExitCode::from(2);
        }
    };
    // One program over every path, with the data files found under each.
    let (files, data) = if paths.is_empty() {
        (crate::builtin::files(), serde_json::json!({}))
    } else {
        let mut files = Vec::new();
        let mut data = serde_json::json!({});
        for p in paths {
            let read = policy::load::read_paths(std::slice::from_ref(p)).and_then(|f| {
                let root = if p.is_file() {
                    p.parent().map(PathBuf::from).unwrap_or_default()
                } else {
                    p.clone()
                };
                let placed = unit::data_document(&root, &f)?;
                Ok((f, placed))
            });
            let ignored = match ignore_set(args.ignore) {
                Ok(set) => set,
                Err(e) => {
                    eprintln!("gitgate test: invalid --ignore pattern: {e}");
                    return ExitCode::from(2);
                }
            };
            let read = read.map(|(f, placed)| {
                let kept = f
                    .into_iter()
                    .filter(|f| {
                        !std::path::Path::new(&f.path)
                            .strip_prefix(p)
                            .unwrap_or(std::path::Path::new(&f.path))
                            .iter()
                            .any(|part| ignored.is_match(&part.to_string_lossy()))
                    })
                    .collect::<Vec<_>>();
                (kept, placed)
            });
            match read {
                Ok((f, placed)) => {
                    if let Err(key) = unit::merge(&mut data, placed) {
                        eprintln!(
                            "gitgate test: {}: data merge conflict at data.{key}",
                            p.display()
                        );
                        return ExitCode::from(2);
                    }
                    files.extend(f);
                }
                Err(e) => {
                    eprintln!("gitgate test: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        (files, data)
    };
    let run = unit::RunOptions {
        filter,
        coverage: args.coverage,
        options: options.clone(),
    };
    let report = unit::run(&files, Some(&data), &run);
    let count = |f: fn(&Outcome) -> bool| report.cases.iter().filter(|t| f(&t.outcome)).count();
    let fail = count(|o| matches!(o, Outcome::Fail));
    let error = count(|o| matches!(o, Outcome::Error(_))) + report.errors.len();
    let below = args
        .coverage
        .then(|| report.total_coverage())
        .flatten()
        .filter(|c| *c < args.threshold);
    if let Some(c) = below {
        eprintln!(
            "gitgate test: coverage {c:.2}% is below the threshold {:.2}%",
            args.threshold
        );
    }
    let code = if report.cases.is_empty() && report.errors.is_empty() {
        // A run that tested nothing must not look like one that passed.
        eprintln!(
            "gitgate test: no test_ rule found{}",
            args.run
                .map(|r| format!(" matching --run {r}"))
                .unwrap_or_default()
        );
        2
    } else if error > 0 || below.is_some() {
        2
    } else if fail > 0 {
        1
    } else {
        0
    };
    for e in &report.errors {
        eprintln!("gitgate test: {e}");
    }
    if report.mode == unit::Mode::PerDirectory && args.format == TestFormat::Json {
        eprintln!("gitgate test: {}", crate::report::commands::PER_DIRECTORY);
    }
    let mut out = std::io::stdout().lock();
    let written = match (args.format, args.coverage) {
        (TestFormat::Json, true) => crate::report::commands::coverage_json(&mut out, &report),
        (TestFormat::Json, false) => crate::report::commands::tests_json(&mut out, &report),
        (TestFormat::Pretty, _) => crate::report::commands::tests(&mut out, &report, args.verbose),
    }
    .and_then(|()| out.flush());
    finish("test", written, code)
}

/// OPA's `--ignore` globs (`*`, `?`), matched against each part of a path.
fn ignore_set(patterns: &[String]) -> Result<regex::RegexSet, regex::Error> {
    regex::RegexSet::new(patterns.iter().map(|p| {
        let mut re = String::from("^");
        for c in p.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        re
    }))
}

/// What `gitgate eval` was given.
pub struct EvalArgs<'a> {
    pub query: &'a str,
    pub data: &'a [PathBuf],
    pub input: Option<&'a std::path::Path>,
    pub fail: bool,
    pub fail_defined: bool,
}

/// `gitgate eval`: OPA's JSON result; 2 when something does not load or the query errors, 1
/// under --fail (undefined) or --fail-defined (defined).
pub fn eval(args: &EvalArgs<'_>, options: &Options) -> ExitCode {
    match crate::author::eval(args.data, args.input, args.query, options) {
        Ok(value) => {
            let defined = value.get("result").is_some();
            let code = u8::from((args.fail && !defined) || (args.fail_defined && defined));
            let mut out = std::io::stdout().lock();
            let written = crate::report::commands::write_data(&mut out, &value, false)
                .and_then(|()| out.flush());
            finish("eval", written, code)
        }
        Err(e) => {
            eprintln!("gitgate eval: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where `gitgate input` reads a range from.
pub struct InputArgs<'a> {
    pub repo: &'a std::path::Path,
    pub base: Option<&'a str>,
    pub head: Option<&'a str>,
    pub config: Option<&'a std::path::Path>,
}

/// `gitgate input`: one document per object (a JSON array for several), or YAML documents.
pub fn input<'a>(
    args: InputArgs<'a>,
    req: crate::author::InputRequest<'a>,
    output: DataFormat,
) -> ExitCode {
    let config;
    let range = if args.base.is_some() || args.head.is_some() {
        // As `check` finds it in range mode: --config, else REPO/gitgate.yaml.
        let default_file = args.repo.join("gitgate.yaml");
        let file = args
            .config
            .or_else(|| default_file.exists().then_some(default_file.as_path()));
        config = match load_config(file) {
            Ok((c, _)) => c,
            Err(code) => return code,
        };
        Some(crate::author::RangeRequest {
            repo: args.repo,
            base: args.base,
            head: args.head,
            config: &config,
        })
    } else {
        None
    };
    let req = crate::author::InputRequest { range, ..req };
    match crate::author::input(&req) {
        Ok(docs) => {
            let value = match <[serde_json::Value; 1]>::try_from(docs) {
                Ok([one]) => one,
                Err(many) => serde_json::Value::Array(many),
            };
            let mut out = std::io::stdout().lock();
            let written =
                crate::report::commands::write_data(&mut out, &value, output == DataFormat::Yaml)
                    .and_then(|()| out.flush());
            finish("input", written, 0)
        }
        Err(e) => {
            eprintln!("gitgate input: {e}");
            ExitCode::from(2)
        }
    }
}

pub fn list_policies(paths: &[PathBuf], options: &Options, verbose: bool) -> ExitCode {
    let set = if paths.is_empty() {
        crate::builtin::policy_set(options)
    } else {
        policy::load::load_paths(paths, options)
    };
    match set {
        Ok(set) if set.is_empty() => {
            eprintln!(
                "gitgate policies: no policy found under {}{}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                set.skipped
                    .iter()
                    .map(|s| format!("\n  {s}"))
                    .collect::<String>()
            );
            ExitCode::from(2)
        }
        Ok(set) => {
            let mut out = std::io::stdout().lock();
            let written = crate::report::commands::policies(&mut out, &set, verbose)
                .and_then(|()| out.flush());
            finish("policies", written, 0)
        }
        Err(e) => {
            eprintln!("gitgate policies: {e}");
            ExitCode::from(2)
        }
    }
}

/// `gitgate config check`: each file read as the commands read it (`FILE: ok`, or its error
/// with file, line and key); exit 2 when one is not valid. Without files: `--config`, else
/// `gitgate.yaml`, which must exist.
pub fn config_check(files: &[PathBuf], config: Option<&std::path::Path>) -> ExitCode {
    let default = [config.map_or_else(|| PathBuf::from("gitgate.yaml"), |c| c.to_path_buf())];
    let files = if files.is_empty() {
        &default[..]
    } else {
        files
    };
    let mut out = std::io::stdout().lock();
    let mut code = 0;
    let mut written = Ok(());
    for file in files {
        match Config::load(file, true) {
            Ok(_) => {
                if written.is_ok() {
                    written = writeln!(out, "{}: ok", file.display());
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 2;
            }
        }
    }
    finish("config check", written, code)
}

/// `gitgate config schema`: the JSON Schema of gitgate.yaml.
pub fn config_schema() -> ExitCode {
    let schema = Config::json_schema();
    let text = serde_json::to_string_pretty(&schema).expect("a JSON value serializes");
    let written = writeln!(std::io::stdout(), "{text}");
    finish("config schema", written, 0)
}

/// Whether `check` of files runs in conftest mode: a conftest flag, `-` (stdin), a
/// `conftest.toml` (as `-c`, or here without a `gitgate.yaml`), or `-p` policies that are all
/// conftest-style (no ConstraintTemplate, constraint or gitgate policy among them).
fn conftest_files(args: &CheckArgs) -> bool {
    let toml = args
        .config
        .as_ref()
        .is_some_and(|c| c.extension().is_some_and(|e| e == "toml"));
    args.conftest.any()
        || toml
        || args.paths.iter().any(|p| p.as_os_str() == "-")
        || (args.config.is_none()
            && std::path::Path::new("conftest.toml").is_file()
            && !std::path::Path::new("gitgate.yaml").is_file())
        || (!args.policy.is_empty() && only_conftest_policies(&args.policy))
        || (!args.policy.is_empty()
            && args.config.is_none()
            && !std::path::Path::new("gitgate.yaml").is_file()
            && holds_no_policy(&args.policy))
}

/// `-p` paths that hold no policy of any kind (no `.rego` file, no document with an
/// `apiVersion` and a `kind`, such as a ConstraintTemplate or another engine's policy, which
/// gitgate names): with no gitgate.yaml either, the command is conftest's, whose answer is
/// "no policies found" (exit 1).
fn holds_no_policy(paths: &[PathBuf]) -> bool {
    let Ok(files) = crate::policy::load::read_paths(paths) else {
        return false; // the gate names the error
    };
    !files.iter().any(|f| {
        f.path.ends_with(".rego") || (f.text.contains("apiVersion") && f.text.contains("kind"))
    })
}

/// conftest-style policies under `paths`: at least one package with decision rules, each of
/// them `main` (or `main.*`) or reading the raw manifest with no gitgate convention, and no
/// Gatekeeper document.
fn only_conftest_policies(paths: &[PathBuf]) -> bool {
    use crate::policy::load::{
        decision_rules, is_native, is_test_file, package_of, reads_raw_input,
    };
    let Ok(files) = crate::policy::load::read_paths(paths) else {
        return false; // the gate names the error
    };
    let mut any = false;
    for f in &files {
        if !f.path.ends_with(".rego") {
            if f.text.contains("ConstraintTemplate")
                || f.text.contains("constraints.gatekeeper.sh/")
            {
                return false;
            }
            continue;
        }
        if is_test_file(&f.path) || decision_rules(&f.text).iter().all(|r| r == "exception") {
            continue;
        }
        let package = package_of(&f.text).unwrap_or_default();
        let main = package == "data.main" || package.starts_with("data.main.");
        if !main && (is_native(&f.text) || !reads_raw_input(&f.text)) {
            return false;
        }
        any = true;
    }
    any
}

fn conftest_settings(
    flags: super::flags::ConftestFlags,
    policy: Vec<PathBuf>,
    fail_on_warn: bool,
    config: Option<&std::path::Path>,
    rego_version: RegoVersion,
) -> Result<crate::conftest::Settings, crate::conftest::ConftestError> {
    let settings = crate::conftest::Settings {
        policy,
        data: flags.data,
        namespaces_given: !flags.namespace.is_empty(),
        namespaces: flags.namespace,
        all_namespaces: flags.all_namespaces,
        combine: flags.combine,
        parser: flags.parser,
        trace: flags.trace,
        strict: flags.strict,
        show_builtin_errors: flags.show_builtin_errors,
        quiet: flags.quiet,
        suppress_exceptions: flags.suppress_exceptions,
        fail_on_warn,
        no_color: flags.no_color,
        capabilities: flags.capabilities,
        ignore: flags.ignore,
        stdin_filename: flags.stdin_filename,
        proto_file_dirs: flags.proto_file_dirs,
        rego_version,
    };
    let file = config.filter(|c| c.extension().is_some_and(|e| e == "toml"));
    settings.with_file(file)
}

/// What conftest answers when it cannot run (no policy, a policy that does not compile, an
/// input it cannot read, a flag it refuses): its command's error, exit 1. In conftest mode its
/// exit codes win over gitgate's 2, so that scripts written for conftest read them unchanged.
const CONFTEST_ERROR: u8 = 1;

/// `gitgate check FILES` in conftest mode: conftest's evaluation, counts, output and exit codes.
fn conftest_check(args: CheckArgs) -> ExitCode {
    use crate::conftest::output;
    use crate::report::Format;
    let color = !args.conftest.no_color && use_color(args.printed.color);
    let fail_on_warn = args.printed.fail_on_warn;
    let no_fail = args.conftest.no_fail;
    let settings = match conftest_settings(
        args.conftest,
        args.policy,
        fail_on_warn,
        args.config.as_deref(),
        args.rego_version,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gitgate check: {e}");
            return ExitCode::from(CONFTEST_ERROR);
        }
    };
    let results = match crate::conftest::check(&settings, &args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gitgate check: {e}");
            return ExitCode::from(CONFTEST_ERROR);
        }
    };
    let code = crate::conftest::exit_code(&results, fail_on_warn);
    // --quiet: no output when the run passes (conftest's "disable successful test output").
    let quiet = settings.quiet && code == 0;
    let code = if no_fail { 0 } else { code };
    let mut out = std::io::stdout().lock();
    let written = if quiet {
        Ok(())
    } else {
        match args.printed.format {
            Format::Text | Format::Stdout => {
                output::standard(&mut out, &results, color, settings.suppress_exceptions)
            }
            Format::Tap => output::tap(&mut out, &results),
            Format::Table => output::table(&mut out, &results),
            format => crate::report::write(
                format,
                &output::to_report(&results, fail_on_warn),
                color,
                &mut out,
            ),
        }
    };
    finish("check", written.and_then(|()| out.flush()), code)
}

/// Whether `test`/`verify` run as conftest's `verify`: `-p`, `-o`, `--report` or a conftest flag.
/// Whether `verify`'s flags are gator's: suites named, `-o json|yaml|text` and nothing else of
/// conftest's.
pub fn gator_output(
    paths: &[PathBuf],
    tests: &super::flags::ConftestTests,
    flags: &super::flags::ConftestFlags,
) -> bool {
    use crate::report::Format;
    !paths.is_empty()
        && tests.policy.is_empty()
        && tests.report.is_none()
        && !tests.fail_on_warn
        && !flags.any()
        && matches!(
            tests.output,
            Some(Format::Json | Format::Yaml | Format::Text)
        )
}

pub fn conftest_tests(
    tests: &super::flags::ConftestTests,
    flags: &super::flags::ConftestFlags,
) -> bool {
    !tests.policy.is_empty() || tests.output.is_some() || tests.report.is_some() || flags.any()
}

/// conftest's `verify`: the `test_` rules of the policies, counted and printed as conftest does.
pub fn conftest_verify(
    paths: &[PathBuf],
    tests: super::flags::ConftestTests,
    flags: super::flags::ConftestFlags,
    config: Option<&std::path::Path>,
    rego_version: RegoVersion,
) -> ExitCode {
    use crate::conftest::output;
    use crate::report::Format;
    let format = tests.output.unwrap_or(Format::Stdout);
    if tests.report.is_some() && !matches!(format, Format::Stdout | Format::Text) {
        eprintln!("Error: report flag is supported with stdout only");
        return ExitCode::from(CONFTEST_ERROR);
    }
    if let Some(r) = tests.report.as_deref()
        && !matches!(r, "fails" | "notes" | "full")
    {
        eprintln!("gitgate: --report {r:?}: expected fails, notes or full");
        return ExitCode::from(CONFTEST_ERROR);
    }
    let color = !flags.no_color && use_color(super::flags::ColorWhen::Auto);
    let trace = flags.trace;
    // Without -p, the paths are the policies (as `gitgate test`'s); with -p, conftest ignores them.
    let policy = if tests.policy.is_empty() {
        paths.to_vec()
    } else {
        tests.policy
    };
    let settings = match conftest_settings(flags, policy, tests.fail_on_warn, config, rego_version)
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gitgate: {e}");
            return ExitCode::from(CONFTEST_ERROR);
        }
    };
    let outcomes = match crate::conftest::verify(&settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gitgate: {e}");
            return ExitCode::from(CONFTEST_ERROR);
        }
    };
    let code = u8::from(outcomes.iter().any(|o| !o.passed));
    let mut out = std::io::stdout().lock();
    let written = match (format, tests.report.as_deref()) {
        _ if settings.quiet && code == 0 => Ok(()),
        (_, Some(which)) => output::tests_report(&mut out, &outcomes, which),
        (Format::Tap, _) => output::tap(&mut out, &output::tests_as_results(&outcomes)),
        (Format::Table, _) => output::table(&mut out, &output::tests_as_results(&outcomes)),
        (Format::Text | Format::Stdout, _) => {
            let engine = if trace {
                crate::conftest::Engine::load(
                    &settings.policy,
                    &settings.data,
                    &settings.compile(true),
                )
                .ok()
            } else {
                None
            };
            output::tests_standard(&mut out, &outcomes, color, engine.as_ref())
        }
        (format, _) => crate::report::write(
            format,
            &output::to_report(&output::tests_as_results(&outcomes), false),
            color,
            &mut out,
        ),
    };
    finish("test", written.and_then(|()| out.flush()), code)
}

/// `gitgate parse`, conftest's `parse`: the documents of each file as conftest mode reads them,
/// as indented JSON (one file: its document, or the list of its documents; several: an object
/// by file name; `--combine`: the combined input).
pub fn conftest_parse(paths: &[PathBuf], parser: Option<&str>, combine: bool) -> ExitCode {
    use crate::conftest::parse;
    let inputs = match parse::inputs(paths, parser, None) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gitgate parse: {e}");
            return ExitCode::from(CONFTEST_ERROR);
        }
    };
    let value = if combine {
        parse::combine(
            inputs
                .into_iter()
                .map(|i| (i.name, serde_json::Value::Array(i.documents)))
                .collect(),
        )
    } else if inputs.len() == 1 {
        let input = inputs.into_iter().next().expect("one input");
        parse::single(input.documents)
    } else {
        serde_json::Value::Object(
            inputs
                .into_iter()
                .map(|i| (i.name, parse::single(i.documents)))
                .collect(),
        )
    };
    let text = serde_json::to_string_pretty(&value).expect("a JSON value serializes");
    let written = writeln!(std::io::stdout(), "{text}");
    finish("parse", written, 0)
}
