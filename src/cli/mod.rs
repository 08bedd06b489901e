//! The command line: parses arguments with clap ([`flags`]) and dispatches each command to
//! [`commands`], which turns what was typed and the configuration into that command's
//! settings and calls its door (each door builds its own runtime).
//!
//! One exit-code contract for every command and format: 0 nothing rejects (every test and
//! case passes); 1 something is rejected or fails (a `deny` finding, a warning under
//! `--fail-on-warn`, a failing test or case); 2 something could not be checked (bad input, a
//! configuration error, a policy that fails to load or errors at run time, a path that matches
//! nothing, usage errors). `check` takes it from [`Report::verdict`](crate::check::Report).
//! A closed stdout (`gitgate check -o json | head -1`) ends the command quietly with the code it
//! would have had, as ripgrep does.

pub mod commands;
pub mod flags;
mod logfmt;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::config::Config;
use crate::policy::Options;
use crate::report::Format;
pub use flags::{Cli, ColorWhen, Command, ConfigCommand, LogFormat};

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

/// The log filter without `GITGATE_LOG`: `-v` raises gitgate's own level only; other crates
/// (rustls, h2, hyper, kube) stay at `warn` unless `GITGATE_LOG` asks for them.
fn default_filter(verbose: u8, quiet: bool) -> &'static str {
    match verbose {
        0 if quiet => "warn",
        0 => "gitgate=info,warn",
        1 => "gitgate=debug,warn",
        _ => "gitgate=trace,warn",
    }
}

fn init_logging(verbose: u8, format: LogFormat, quiet: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GITGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter(verbose, quiet)));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        // Fields at the top level of each object, beside `message`, `level` and `target`.
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.fmt_fields(logfmt::Fields).try_init(),
    };
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let options = |timeout_ms: u64| Options {
        eval_timeout: Duration::from_millis(timeout_ms),
        rego_version: cli.rego_version,
        ..Options::default()
    };
    match cli.command {
        // gator's `verify SUITE -o json|yaml` stays gator's; any other conftest flag is
        // conftest's.
        Command::Verify {
            paths,
            tests,
            conftest,
            ..
        } if commands::conftest_tests(&tests, &conftest)
            && !commands::gator_output(&paths, &tests, &conftest) =>
        {
            commands::conftest_verify(
                &paths,
                tests,
                conftest,
                cli.config.as_deref(),
                cli.rego_version,
            )
        }
        // `--ignore` is OPA's on `test`: it alone does not make conftest's mode.
        Command::Test {
            paths,
            tests,
            conftest,
            ..
        } if commands::conftest_tests(
            &tests,
            &flags::ConftestFlags {
                ignore: None,
                ..conftest.clone()
            },
        ) =>
        {
            commands::conftest_verify(
                &paths,
                tests,
                conftest,
                cli.config.as_deref(),
                cli.rego_version,
            )
        }
        Command::Verify {
            paths,
            verbose_cases,
            timeout_ms,
            run,
            tests,
            ..
        } => commands::verify(
            &paths,
            &commands::VerifyArgs {
                verbose: verbose_cases || cli.verbose > 0,
                run: run.as_deref(),
                output: match tests.output {
                    Some(crate::report::Format::Json) => flags::DataFormat::Json,
                    Some(crate::report::Format::Yaml) => flags::DataFormat::Yaml,
                    _ => flags::DataFormat::Text,
                },
            },
            &options(timeout_ms),
        ),
        Command::Test {
            paths,
            run,
            timeout_ms,
            format,
            coverage,
            threshold,
            v0_compatible,
            v1_compatible,
            bundle: _,
            explain: _,
            conftest,
            ..
        } => {
            let ignore: Vec<String> = conftest.ignore.into_iter().collect();
            let mut options = options(timeout_ms);
            if v0_compatible {
                options.rego_version = crate::policy::rego::RegoVersion::V0;
            } else if v1_compatible {
                options.rego_version = crate::policy::rego::RegoVersion::V1;
            }
            commands::test(
                &paths,
                &commands::TestArgs {
                    run: run.as_deref(),
                    verbose: cli.verbose > 0,
                    format,
                    coverage,
                    threshold,
                    ignore: &ignore,
                },
                &options,
            )
        }
        Command::Eval {
            query,
            data,
            input,
            fail,
            fail_defined,
            timeout_ms,
        } => commands::eval(
            &commands::EvalArgs {
                query: &query,
                data: &data,
                input: input.as_deref(),
                fail,
                fail_defined,
            },
            &options(timeout_ms),
        ),
        Command::Input {
            file,
            repo,
            base,
            head,
            old,
            delete,
            policy,
            for_policy,
            output,
        } => commands::input(
            commands::InputArgs {
                repo: &repo,
                base: base.as_deref(),
                head: head.as_deref(),
                config: cli.config.as_deref(),
            },
            crate::author::InputRequest {
                file: file.as_deref(),
                range: None,
                old: old.as_deref(),
                delete,
                policies: &policy,
                for_policy: for_policy.as_deref(),
                rego_version: cli.rego_version,
            },
            output,
        ),
        Command::Policies { paths } => {
            commands::list_policies(&paths, &options(1000), cli.verbose > 0)
        }
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
            conftest,
        } => commands::check(commands::CheckArgs {
            paths,
            repo,
            base,
            head,
            printed: Printed {
                format: output,
                fail_on_warn,
                color,
            },
            policy,
            trust_head,
            kubeconfig,
            config: cli.config.clone(),
            rego_version: cli.rego_version,
            conftest,
        }),
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
            commands::serve(config, &dir, cli.rego_version, kubeconfig.as_deref())
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
            commands::audit(
                &config,
                &dir,
                &policy,
                cli.rego_version,
                kubeconfig.as_deref(),
                printed,
            )
        }
        Command::Config { command } => match command {
            ConfigCommand::Check { files } => commands::config_check(&files, cli.config.as_deref()),
            ConfigCommand::Schema => commands::config_schema(),
        },
        Command::Parse {
            paths,
            parser,
            combine,
        } => commands::conftest_parse(&paths, parser.as_deref(), combine),
        Command::Version => {
            use std::io::Write as _;
            let written = writeln!(std::io::stdout(), "gitgate {}", env!("CARGO_PKG_VERSION"));
            finish("version", written, 0)
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
pub(crate) fn use_color(when: ColorWhen) -> bool {
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
pub(crate) fn load_config(path: Option<&std::path::Path>) -> Result<(Config, PathBuf), ExitCode> {
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
pub struct Printed {
    pub format: Format,
    pub fail_on_warn: bool,
    pub color: ColorWhen,
}

/// The exit code of a command that wrote its result to stdout: `code`, also when stdout was
/// closed early (`| head -1`: a broken pipe ends the command quietly, as ripgrep's does); 2
/// when the result could not be written at all (a full disk), since nobody saw it.
pub(crate) fn finish(command: &str, written: std::io::Result<()>, code: u8) -> ExitCode {
    match written {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            eprintln!("gitgate {command}: cannot write the output: {e}");
            ExitCode::from(2)
        }
    }
}
