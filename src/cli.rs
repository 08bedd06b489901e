//! The command line: parses arguments with clap and hands each command to its module.
//!
//! One exit-code contract for every command and format: 0 nothing rejects (every test and
//! case passes); 1 something is rejected or fails (a `deny` finding, a warning under
//! `--fail-on-warn`, a failing test or case); 2 something could not be checked (bad input, a
//! configuration error, a policy that fails to load or errors at run time, a path that matches
//! nothing, usage errors). `check` takes it from [`Report::verdict`](crate::check::Report).
//! A closed stdout (`gitgate check -o json | head -1`) ends the command quietly with the code it
//! would have had, as ripgrep does.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use regex::Regex;

use crate::check::Target;
use crate::config::Config;
use crate::decision::suite::{self, SuiteResult};
use crate::policy::rego::RegoVersion;
use crate::policy::unit::{self, Outcome};
use crate::policy::{self, Options};
use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "gitgate",
    version,
    about = "A policy and admission gate for GitOps: the same Rego policies before merge and at apply time"
)]
pub struct Cli {
    /// Configuration file (YAML) [default: gitgate.yaml, when it exists]
    #[arg(short = 'c', long, global = true)]
    pub config: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Rego syntax of policy modules: auto (v1 with `import rego.v1`, else v1 then v0), v0, v1
    #[arg(long, global = true, value_enum, default_value_t = RegoVersion::Auto)]
    pub rego_version: RegoVersion,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Gatekeeper suite.yaml test suites, like `gator verify`
    Verify {
        /// Suite files, or directories searched for suites
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print every test and case, not only failures
        #[arg(long)]
        verbose_cases: bool,
        /// Limit of one policy evaluation, in milliseconds
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// Run the test_ rules of Rego policy directories, like `opa test`
    Test {
        /// Rego files or directories; each path is compiled into one program.
        /// Without paths, the built-in library is tested.
        paths: Vec<PathBuf>,
        /// Run only tests whose full name (data.pkg.test_x) matches this regular expression
        #[arg(short = 'r', long = "run")]
        run: Option<String>,
        /// Limit of one test's evaluation, in milliseconds
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// List the policies a set of paths (or the built-in library) loads
    Policies {
        /// Policy files or directories (default: the built-in library)
        paths: Vec<PathBuf>,
    },
    /// Check a pull request's manifests before merge: the objects a Git range adds, changes
    /// and removes (default: from the merge base with the protected branch to HEAD), or, with
    /// files and no --base/--head, every object in them
    Check {
        /// Without --base/--head: files or directories to check. With them: the manifest roots
        /// in the repository (instead of repository.paths)
        paths: Vec<PathBuf>,
        /// The repository [default: the current directory]
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The branch or revision the pull request merges into; changes are counted from its
        /// merge base with --head, as `git diff BASE...HEAD` [default: the protected branch]
        #[arg(long)]
        base: Option<String>,
        /// The head revision [default: HEAD]
        #[arg(long)]
        head: Option<String>,
        /// Output format
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Fail (exit 1) on warnings too
        #[arg(long)]
        fail_on_warn: bool,
        /// Policies from this directory instead of the configured ones (repeatable)
        #[arg(short = 'p', long = "policy")]
        policy: Vec<PathBuf>,
        /// Colour in text output
        #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
        color: ColorWhen,
        /// Read gitgate.yaml and the policy directories from the working tree (the pull
        /// request's head) instead of the merge base on the protected branch
        #[arg(long)]
        trust_head: bool,
        /// Also read the labels of the cluster's Namespaces, for namespaceSelector, from the
        /// cluster of this kubeconfig (the head's Namespace manifests win)
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Serve the validating admission webhook over HTTPS (POST /validate, /healthz, /readyz,
    /// /metrics)
    Serve {
        /// Address to listen on [default: server.listen, 0.0.0.0:8443]
        #[arg(long)]
        listen: Option<String>,
        /// TLS certificate (PEM) [default: server.tlsCert]
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM) [default: server.tlsKey]
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// CA of client certificates: turns on mutual TLS for /validate [default: server.clientCA]
        #[arg(long)]
        client_ca: Option<PathBuf>,
        /// Kubeconfig of the cluster to read (namespace labels, synced kinds) [default:
        /// cluster.kubeconfig, KUBECONFIG, the in-cluster service account, ~/.kube/config]
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Audit what is already in the cluster: every object of the audited kinds, judged with
    /// the policies and the provenance verdict it would get as a CREATE now, and the objects
    /// the newest approved commit holds that the cluster lacks
    Audit {
        /// Output format
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
        /// Fail (exit 1) on warnings too
        #[arg(long)]
        fail_on_warn: bool,
        /// Policies from this directory instead of the configured ones (repeatable)
        #[arg(short = 'p', long = "policy")]
        policy: Vec<PathBuf>,
        /// Colour in text output
        #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
        color: ColorWhen,
        /// Kubeconfig of the cluster [default: cluster.kubeconfig, KUBECONFIG, the in-cluster
        /// service account, ~/.kube/config]
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Run the whole story on this machine, with no setup: a GitOps repository with signed
    /// history, `check` on two pull requests, then the webhook on loopback over TLS
    Demo {
        /// Keep the temporary directory (repository, configuration, keys) and print its path
        #[arg(long)]
        keep: bool,
        /// When to colour the output
        #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
        color: ColorWhen,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // The Rego parser and interpreter report through anyhow, which captures a backtrace for
    // every error when RUST_BACKTRACE is set, on the request path too. gitgate's errors carry
    // file and line instead; keep backtraces for panics only.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the first statement of main, before any thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    // The one TLS crypto provider of the process: ring (never aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The demo prints its own story; the webhook's log lines would interleave with it.
    let quiet = matches!(cli.command, Command::Demo { .. }) && cli.verbose == 0;
    init_logging(cli.verbose, cli.log_format, quiet);
    run(cli)
}

fn init_logging(verbose: u8, format: LogFormat, quiet: bool) {
    let level = match verbose {
        0 if quiet => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GITGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let options = |timeout_ms: u64| Options {
        eval_timeout: Duration::from_millis(timeout_ms),
        rego_version: cli.rego_version,
    };
    match cli.command {
        Command::Verify {
            paths,
            verbose_cases,
            timeout_ms,
        } => verify(
            &paths,
            verbose_cases || cli.verbose > 0,
            &options(timeout_ms),
        ),
        Command::Test {
            paths,
            run,
            timeout_ms,
        } => test(
            &paths,
            run.as_deref(),
            cli.verbose > 0,
            &options(timeout_ms),
        ),
        Command::Policies { paths } => list_policies(&paths, &options(1000)),
        Command::Check {
            paths,
            repo,
            base,
            head,
            output,
            fail_on_warn,
            policy,
            color,
            trust_head,
            kubeconfig,
        } => {
            let range = paths.is_empty() || base.is_some() || head.is_some();
            let (mut config, set, target, gate_items) = if range && !trust_head {
                // The gate comes from the protected branch, not from the pull request.
                let options = crate::check::gate::Options {
                    repo: &repo,
                    config_file: cli.config.as_deref(),
                    base: base.as_deref(),
                    head: head.as_deref(),
                    policy_override: &policy,
                    rego_version: cli.rego_version,
                };
                let gate = match crate::check::gate::from_base(&options) {
                    Ok(gate) => gate,
                    Err(e) => {
                        eprintln!("gitgate check: {e}");
                        return ExitCode::from(2);
                    }
                };
                let target = Target::Range {
                    repo,
                    base: Some(gate.base.to_string()),
                    head,
                };
                (gate.config, gate.policies, target, gate.items)
            } else {
                // In range mode, `--repo X` finds `X/gitgate.yaml`.
                let default_file = range.then(|| repo.join("gitgate.yaml"));
                let file = cli.config.as_deref().or(default_file.as_deref());
                let (config, dir) = match load_config(file) {
                    Ok(c) => c,
                    Err(code) => return code,
                };
                let set = match crate::setup::from_config(
                    &config.policies,
                    &dir,
                    &policy,
                    cli.rego_version,
                ) {
                    Ok(set) => set,
                    Err(e @ policy::PolicyError::Config { .. }) => {
                        let name =
                            file.map_or_else(|| "gitgate.yaml".into(), |f| f.display().to_string());
                        eprintln!("gitgate check: {name}: {e}");
                        return ExitCode::from(2);
                    }
                    Err(e) => {
                        eprintln!("gitgate check: {e}");
                        return ExitCode::from(2);
                    }
                };
                let target = if range {
                    Target::Range { repo, base, head }
                } else {
                    Target::Files(paths.clone())
                };
                (config, set, target, Vec::new())
            };
            let roots_from_arguments = matches!(target, Target::Range { .. }) && !paths.is_empty();
            if roots_from_arguments {
                config.repository.paths = paths.iter().map(|p| p.display().to_string()).collect();
            }
            set.log_skipped();
            let printed = Printed {
                format: output,
                fail_on_warn,
                color,
            };
            check(
                &target,
                &config,
                &set,
                gate_items,
                printed,
                roots_from_arguments,
                kubeconfig.as_deref(),
            )
        }
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            client_ca,
            kubeconfig,
        } => {
            let (mut config, dir) = match load_config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            if let Some(l) = listen {
                config.server.listen = l;
            }
            if let Some(c) = tls_cert {
                config.server.tls_cert = c;
            }
            if let Some(k) = tls_key {
                config.server.tls_key = k;
            }
            if client_ca.is_some() {
                config.server.client_ca = client_ca;
            }
            serve(config, &dir, cli.rego_version, kubeconfig.as_deref())
        }
        Command::Audit {
            output,
            fail_on_warn,
            policy,
            color,
            kubeconfig,
        } => {
            let (config, dir) = match load_config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let printed = Printed {
                format: output,
                fail_on_warn,
                color,
            };
            audit(
                &config,
                &dir,
                &policy,
                cli.rego_version,
                kubeconfig.as_deref(),
                printed,
            )
        }
        Command::Demo { keep, color } => {
            let options = crate::demo::Options {
                keep,
                color: use_color(color),
                rego_version: cli.rego_version,
            };
            let mut out = std::io::stdout().lock();
            match crate::demo::run(&options, &mut out) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("gitgate demo: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// Whether to write ANSI colours to stdout.
fn use_color(when: ColorWhen) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            use std::io::IsTerminal;
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Loads the configuration (`-c FILE`, or `gitgate.yaml` when it exists) and the directory its
/// relative paths are resolved against; exit 2 on errors.
fn load_config(path: Option<&std::path::Path>) -> Result<(Config, PathBuf), ExitCode> {
    let (file, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("gitgate.yaml"), false),
    };
    match Config::load(&file, required) {
        Ok(config) => {
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."));
            Ok((config, dir))
        }
        Err(e) => {
            eprintln!("gitgate: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// How `check` prints its report and turns it into an exit code.
struct Printed {
    format: Format,
    fail_on_warn: bool,
    color: ColorWhen,
}

/// Runs a check with its gate loaded, adds what was found about the gate itself, and
/// writes the report.
fn check(
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
        Some(path) => match cluster_namespaces(config, path) {
            Ok(table) => Some(table),
            Err(e) => {
                eprintln!("gitgate check: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut report = match crate::check::run_with(target, set, config, cluster_namespaces.as_ref())
    {
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
    if !gate_items.is_empty() {
        report.items.extend(gate_items);
        report.items.sort_by(|a, b| {
            (a.path.as_str(), a.line, a.level).cmp(&(b.path.as_str(), b.line, b.level))
        });
    }
    report.fail_on_warn = fail_on_warn;
    let color = use_color(color);
    let mut out = std::io::stdout().lock();
    let written = crate::report::write(format, &report, color, &mut out).and_then(|()| out.flush());
    finish("check", written, report.exit_code())
}

/// The labels of the Namespaces of the cluster a kubeconfig names.
fn cluster_namespaces(
    config: &Config,
    kubeconfig: &std::path::Path,
) -> Result<crate::cluster::NamespaceTable, crate::cluster::ClusterError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::cluster::ClusterError::Request(e.to_string()))?;
    runtime.block_on(async {
        let connection = crate::cluster::connect(&config.cluster, Some(kubeconfig))
            .await?
            .ok_or(crate::cluster::ClusterError::NoCluster)?;
        connection.namespace_labels().await
    })
}

/// `gitgate audit`: the report in the `check` formats, with the `check` exit codes.
fn audit(
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

/// The exit code of a command that wrote its result to stdout: `code`, also when stdout was
/// closed early (`| head -1`: a broken pipe ends the command quietly, as ripgrep's does); 2
/// when the result could not be written at all (a full disk), since nobody saw it.
fn finish(command: &str, written: std::io::Result<()>, code: u8) -> ExitCode {
    match written {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            eprintln!("gitgate {command}: cannot write the output: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(
    config: Config,
    config_dir: &std::path::Path,
    rego_version: RegoVersion,
    kubeconfig: Option<&std::path::Path>,
) -> ExitCode {
    let state = match crate::serve::setup::state(&config, config_dir, rego_version) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("gitgate serve: {e}");
            return ExitCode::from(2);
        }
    };
    // Workers and the blocking pool (where decisions run) get room for deep objects.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(crate::isolate::THREAD_STACK)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gitgate serve: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let files = crate::serve::TlsFiles {
        cert: config.server.tls_cert.clone(),
        key: config.server.tls_key.clone(),
        client_ca: config.server.client_ca.clone(),
    };
    let result = runtime.block_on(async {
        let state = std::sync::Arc::new(
            crate::serve::setup::with_cluster(state, &config, kubeconfig).await,
        );
        crate::serve::audit::spawn(&state);
        crate::serve::run(
            state,
            &config.server.listen,
            files,
            config.server.max_body_bytes,
        )
        .await
    });
    // In-flight requests have had their answers (`run` waits for them); a decision abandoned
    // at its deadline may still run on the blocking pool, and dropping the runtime would wait
    // for it: nobody waits for its result.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gitgate serve: {e}");
            ExitCode::from(2)
        }
    }
}

fn verify(paths: &[PathBuf], verbose: bool, options: &Options) -> ExitCode {
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
    let written = (|| {
        for r in &results {
            print_suite(&mut out, r, verbose)?;
        }
        writeln!(
            out,
            "{} suites, {} tests, {} cases: {} suites passed, {} failed, {} with errors",
            results.len(),
            tests,
            cases,
            results.len()
                - results
                    .iter()
                    .filter(|r| r.has_failures() || r.has_errors())
                    .count(),
            failed,
            errors
        )?;
        out.flush()
    })();
    finish("verify", written, code)
}

fn print_suite(out: &mut impl Write, r: &SuiteResult, verbose: bool) -> std::io::Result<()> {
    let ms = |d: Duration| format!("{:.3}s", d.as_secs_f64());
    if let Some(e) = &r.error {
        writeln!(out, "ERROR {}\n    {e}", r.file)?;
        return Ok(());
    }
    let bad = r.has_failures() || r.has_errors();
    for t in &r.tests {
        let t_bad = t.error.is_some()
            || t.cases
                .iter()
                .any(|c| c.error.is_some() || !c.failures.is_empty());
        if t.skipped {
            if verbose {
                writeln!(out, "    --- SKIP: {}", t.name)?;
            }
            continue;
        }
        if !(t_bad || verbose) {
            continue;
        }
        let status = if t_bad { "FAIL" } else { "PASS" };
        writeln!(out, "    --- {status}: {} ({})", t.name, ms(t.duration))?;
        if let Some(e) = &t.error {
            writeln!(out, "        error: {e}")?;
        }
        for c in &t.cases {
            let status = if c.skipped {
                "SKIP"
            } else if c.error.is_some() || !c.failures.is_empty() {
                "FAIL"
            } else if verbose {
                "PASS"
            } else {
                continue;
            };
            writeln!(out, "        --- {status}: {} ({})", c.name, ms(c.duration))?;
            if let Some(e) = &c.error {
                writeln!(out, "            error: {e}")?;
            }
            for f in &c.failures {
                writeln!(out, "            {f}")?;
            }
        }
    }
    let (tests, cases) = r.counts();
    let status = if bad { "FAIL" } else { "ok  " };
    writeln!(
        out,
        "{status} {}\t{} tests, {} cases\t{}",
        r.file,
        tests,
        cases,
        ms(r.duration)
    )
}

/// `gitgate test`: 0 when every test passes (skipped `todo_` tests do not count), 1 when one
/// fails, 2 when one errors, the policies do not load or compile, or no test is found.
fn test(paths: &[PathBuf], run: Option<&str>, verbose: bool, options: &Options) -> ExitCode {
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
    let pass = count(|o| matches!(o, Outcome::Pass));
    let fail = count(|o| matches!(o, Outcome::Fail));
    let skip = count(|o| matches!(o, Outcome::Skip));
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
    let written = (|| {
        let mut last_file = "";
        for t in &results {
            let label = match &t.outcome {
                Outcome::Pass if !verbose => continue,
                Outcome::Pass => "PASS".to_string(),
                Outcome::Fail => "FAIL".to_string(),
                Outcome::Skip => "SKIPPED".to_string(),
                Outcome::Error(e) => format!("ERROR\n  {e}"),
            };
            if t.file != last_file {
                writeln!(out, "{}:", t.file)?;
                last_file = &t.file;
            }
            writeln!(out, "{}: {} ({:.3?})", t.rule, label, t.duration)?;
        }
        writeln!(out, "{}", "-".repeat(80))?;
        if total == 0 {
            writeln!(out, "no tests found")?;
        }
        for (label, n) in [
            ("PASS", pass),
            ("FAIL", fail),
            ("SKIPPED", skip),
            ("ERROR", error),
        ] {
            if n > 0 {
                writeln!(out, "{label}: {n}/{total}")?;
            }
        }
        out.flush()
    })();
    finish("test", written, code)
}

fn list_policies(paths: &[PathBuf], options: &Options) -> ExitCode {
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
            let written = (|| {
                for s in &set.skipped {
                    writeln!(out, "skipped: {s}")?;
                }
                for e in &set.expansions {
                    writeln!(
                        out,
                        "{:<28} {:<7} {:<10} {} ({}:{})",
                        e.name,
                        e.enforcement.map_or("-", |a| a.as_str()),
                        "expansion",
                        e.describe(),
                        e.file,
                        e.line
                    )?;
                }
                for p in set.policies() {
                    writeln!(
                        out,
                        "{:<28} {:<7} {:<10} {}",
                        p.name,
                        p.enforcement.as_str(),
                        format!("{:?}", p.flavor).to_lowercase(),
                        p.title.as_deref().unwrap_or(&p.origin)
                    )?;
                }
                out.flush()
            })();
            finish("policies", written, 0)
        }
        Err(e) => {
            eprintln!("gitgate policies: {e}");
            ExitCode::from(2)
        }
    }
}
