//! Each command: what was typed and the configuration turned into the command's settings,
//! the door called, its result printed (the printers live in `report/`) and its exit code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use regex::Regex;

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
        let set = match crate::setup::from_config(
            &config.policies,
            &dir,
            &args.policy,
            args.rego_version,
        ) {
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
    let set = match crate::setup::from_config(&config.policies, dir, policy, rego_version) {
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

pub fn verify(paths: &[PathBuf], verbose: bool, options: &Options) -> ExitCode {
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
    let results = suite::run_suites(&files, options, threads);
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
    let written = crate::report::commands::suites(
        &mut out,
        &results,
        verbose,
        (tests, cases, failed, errors),
    )
    .and_then(|()| out.flush());
    finish("verify", written, code)
}

/// `gitgate test`: 0 when every test passes (skipped `todo_` tests do not count), 1 when one
/// fails, 2 when one errors, the policies do not load or compile, or no test is found.
pub fn test(paths: &[PathBuf], run: Option<&str>, verbose: bool, options: &Options) -> ExitCode {
    let filter = match run.map(Regex::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gitgate test: invalid --run expression: {e}");
            return ExitCode::from(2);
        }
    };
    let mut groups = Vec::new();
    if paths.is_empty() {
        groups.push(("built-in library".to_string(), crate::builtin::files()));
    } else {
        for p in paths {
            match policy::load::read_paths(std::slice::from_ref(p)) {
                Ok(files) => groups.push((p.display().to_string(), files)),
                Err(e) => {
                    eprintln!("gitgate test: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let mut results = Vec::new();
    for (name, files) in &groups {
        match unit::run(files, filter.as_ref(), options) {
            Ok(r) => results.extend(r),
            Err(e) => {
                eprintln!("gitgate test: {name}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|t| f(&t.outcome)).count();
    let fail = count(|o| matches!(o, Outcome::Fail));
    let error = count(|o| matches!(o, Outcome::Error(_)));
    let total = results.len();
    let code = if total == 0 {
        // A run that tested nothing must not look like one that passed.
        eprintln!(
            "gitgate test: no test_ rule found{}",
            run.map(|r| format!(" matching --run {r}"))
                .unwrap_or_default()
        );
        2
    } else if error > 0 {
        2
    } else if fail > 0 {
        1
    } else {
        0
    };
    let mut out = std::io::stdout().lock();
    let written =
        crate::report::commands::tests(&mut out, &results, verbose).and_then(|()| out.flush());
    finish("test", written, code)
}

pub fn list_policies(paths: &[PathBuf], options: &Options) -> ExitCode {
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
            let written =
                crate::report::commands::policies(&mut out, &set).and_then(|()| out.flush());
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
        rego_version,
    };
    let file = config.filter(|c| c.extension().is_some_and(|e| e == "toml"));
    settings.with_file(file)
}

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
            return ExitCode::from(2);
        }
    };
    let results = match crate::conftest::check(&settings, &args.paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gitgate check: {e}");
            return ExitCode::from(2);
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
        return ExitCode::from(2);
    }
    if let Some(r) = tests.report.as_deref()
        && !matches!(r, "fails" | "notes" | "full")
    {
        eprintln!("gitgate: --report {r:?}: expected fails, notes or full");
        return ExitCode::from(2);
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
            return ExitCode::from(2);
        }
    };
    let outcomes = match crate::conftest::verify(&settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gitgate: {e}");
            return ExitCode::from(2);
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
