//! What can be typed: the commands and flags, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::rego::RegoVersion;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    Text,
    Json,
    Yaml,
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
        /// Suite files, or directories searched for suites (with -p: conftest's `verify`)
        #[arg(required_unless_present = "policy")]
        paths: Vec<PathBuf>,
        /// Print every test and case, not only failures
        #[arg(long)]
        verbose_cases: bool,
        /// Limit of one policy evaluation, in milliseconds
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// Run only the tests whose name matches this regular expression (gator's --run)
        #[arg(short = 'r', long = "run")]
        run: Option<String>,
        #[command(flatten)]
        tests: ConftestTests,
        #[command(flatten)]
        conftest: ConftestFlags,
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
        /// Output format: pretty (as `opa test` prints) or json (OPA's shape)
        #[arg(short = 'f', long = "format", value_enum, default_value_t = TestFormat::Pretty)]
        format: TestFormat,
        /// Report coverage per file and line (text, or OPA's JSON report with -f json)
        #[arg(long)]
        coverage: bool,
        /// With --coverage: exit 2 when the total coverage (in %) is below this
        #[arg(long, default_value_t = 0.0)]
        threshold: f64,
        /// Parse modules as Rego v0 (as --rego-version v0), as OPA's flag
        #[arg(long, conflicts_with = "v1_compatible")]
        v0_compatible: bool,
        /// Parse modules as Rego v1 (as --rego-version v1), as OPA's flag
        #[arg(long)]
        v1_compatible: bool,
        /// Accepted as OPA's (a directory is read the same way as a bundle's files)
        #[arg(short = 'b', long, hide = true)]
        bundle: bool,
        /// Accepted as OPA's; a failing test is reported by name, with its print() output
        #[arg(long, hide = true)]
        explain: Option<String>,
        #[command(flatten)]
        tests: ConftestTests,
        #[command(flatten)]
        conftest: ConftestFlags,
    },
    /// Evaluate a query against policies, data files and an input, like `opa eval`; prints
    /// OPA's JSON result ({} when undefined)
    Eval {
        /// The query (`data.main.deny`)
        query: String,
        /// Rego files, data files (JSON/YAML) or directories of them (repeatable)
        #[arg(short = 'd', long = "data")]
        data: Vec<PathBuf>,
        /// The input document (JSON or YAML); `-` reads standard input
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
        /// Exit 1 when the result is undefined
        #[arg(long)]
        fail: bool,
        /// Exit 1 when the result is defined
        #[arg(long)]
        fail_defined: bool,
        /// Limit of the evaluation, in milliseconds
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Print the input document a policy sees: for each object of a manifest file (a CREATE,
    /// or with --old an UPDATE, as `check` builds it), for each change of a Git range (with
    /// --base/--head, as `check` decides it), or for an AdmissionReview JSON file
    Input {
        /// A manifest (YAML or JSON) or an AdmissionReview; with --base/--head, the manifest
        /// roots in the repository [default: repository.paths]
        file: Option<PathBuf>,
        /// The repository of --base/--head
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The revision the change merges into (as `check --base`)
        #[arg(long)]
        base: Option<String>,
        /// The head revision of the change (as `check --head`)
        #[arg(long)]
        head: Option<String>,
        /// The manifest before the change: objects of the same identity are UPDATEs
        #[arg(long)]
        old: Option<PathBuf>,
        /// Judge the objects as deleted (input.review.oldObject, no object)
        #[arg(long)]
        delete: bool,
        /// Policies (with --for): the input as that policy sees it
        #[arg(short = 'p', long = "policy")]
        policy: Vec<PathBuf>,
        /// The policy whose input to print: with its parameters, or the manifest itself for
        /// a conftest-style policy [default: the document, without parameters]
        #[arg(long = "for")]
        for_policy: Option<String>,
        /// Output format
        #[arg(short = 'o', long = "output", value_enum, default_value_t = DataFormat::Json)]
        output: DataFormat,
    },
    /// Print the documents conftest mode reads from files, as `conftest parse` prints them:
    /// one file's document (or list of documents), or an object of them by file name
    Parse {
        /// Files to read; `-` is stdin
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The parser (conftest's names: yaml, json, hcl2, xml, dockerfile, ...) [default: by
        /// each file's name]
        #[arg(long)]
        parser: Option<String>,
        /// Print all files as the one input `--combine` checks: [{path, contents}, ...]
        #[arg(long)]
        combine: bool,
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
        /// in the repository (instead of repository.paths). `-` is stdin; an empty name is
        /// ignored (as conftest ignores it)
        #[arg(value_parser = clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from))]
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
        #[command(flatten)]
        conftest: ConftestFlags,
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
    /// Check a configuration file, or print the JSON Schema of gitgate.yaml
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the version
    Version,
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

/// `gitgate config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate configuration files as `check`, `serve` and `audit` read them: `FILE: ok`
    /// for each, or the error with its file, line and key (exit 2)
    Check {
        /// The files [default: --config, else gitgate.yaml]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of gitgate.yaml, for editors
    /// (`# yaml-language-server: $schema=FILE`) and other tools
    Schema,
}

/// conftest's flags, with conftest's meaning (files mode of `check`; `test`/`verify` with `-p`).
/// Any of them (or `-` as a file, or a `conftest.toml`) selects conftest mode: see
/// `crate::conftest`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConftestFlags {
    /// Packages to evaluate (conftest's namespaces, `*` globs) [default: main] (repeatable)
    #[arg(short = 'n', long = "namespace")]
    pub namespace: Vec<String>,
    /// Evaluate every package
    #[arg(long)]
    pub all_namespaces: bool,
    /// Data files or directories (.json, .yaml), loaded as `data` (repeatable)
    #[arg(short = 'd', long = "data")]
    pub data: Vec<PathBuf>,
    /// Print the queries evaluated, their values and the rules they refer to
    #[arg(long)]
    pub trace: bool,
    /// Refuse unused variables and arguments in policies
    #[arg(long)]
    pub strict: bool,
    /// A built-in function's error fails the evaluation
    #[arg(long)]
    pub show_builtin_errors: bool,
    /// Evaluate all documents as one input: an array of {path, contents}
    #[arg(long)]
    pub combine: bool,
    /// The parser of the inputs (yaml, json, dockerfile, toml, ini, properties, dotenv, ignore)
    /// [default: by file name; stdin: yaml]
    #[arg(long)]
    pub parser: Option<String>,
    /// OPA capabilities file (JSON): built-ins it does not list are refused
    #[arg(long)]
    pub capabilities: Option<PathBuf>,
    /// No output when nothing fails nor warns
    #[arg(long)]
    pub quiet: bool,
    /// Do not print exceptions (still counted)
    #[arg(long)]
    pub suppress_exceptions: bool,
    /// No colour (as --color never)
    #[arg(long)]
    pub no_color: bool,
    /// Exit 0 even when a policy fails
    #[arg(long)]
    pub no_fail: bool,
    /// Skip input paths this regular expression matches (`gitgate test` outside conftest's
    /// mode: leave out files and directories whose name matches this glob, as OPA's)
    #[arg(long)]
    pub ignore: Option<String>,
    /// The name stdin (`-`) is reported and parsed as
    #[arg(long)]
    pub stdin_filename: Option<String>,
    /// Directories of the .proto files text protos name their message type from (repeatable,
    /// or comma-separated)
    #[arg(long = "proto-file-dirs", value_delimiter = ',')]
    pub proto_file_dirs: Vec<PathBuf>,
}

impl ConftestFlags {
    /// Whether any flag was given.
    pub fn any(&self) -> bool {
        !self.namespace.is_empty()
            || self.all_namespaces
            || !self.data.is_empty()
            || self.trace
            || self.strict
            || self.show_builtin_errors
            || self.combine
            || self.parser.is_some()
            || self.capabilities.is_some()
            || self.quiet
            || self.suppress_exceptions
            || self.no_color
            || self.no_fail
            || self.ignore.is_some()
            || self.stdin_filename.is_some()
            || !self.proto_file_dirs.is_empty()
    }
}

/// conftest `verify`'s own flags, on `test` and `verify`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConftestTests {
    /// Policy files or directories, as conftest's `verify -p` (repeatable)
    #[arg(short = 'p', long = "policy")]
    pub policy: Vec<PathBuf>,
    /// Output format (conftest mode): stdout, tap, table, json, junit, ...
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<Format>,
    /// OPA's test report: fails, notes or full (stdout output only)
    #[arg(long)]
    pub report: Option<String>,
    /// Fail (exit 1) on warnings too
    #[arg(long)]
    pub fail_on_warn: bool,
}

#[cfg(test)]
mod consistency {
    /// clap's own checks of the whole command line (two arguments of one name, a short flag
    /// used twice): a merge of two sets of flags that collide fails here, not at a user's run.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
