//! One compiled Rego program: modules parsed (v0 or v1, per module) and prepared once, then
//! evaluated many times from many threads by cloning the prepared engine, which shares the
//! compiled policy and takes no lock.
//!
//! **Two engines.** Each rule a decision asks for (a policy's `violation`, a batch rule) is
//! also compiled, once at load, to regorus's register VM ([`Program::compile_vm`]), which runs
//! the built-in library about five times faster than the interpreter (BENCHMARKS.md). The VM
//! does not take every construct (`with`, `walk`, partial objects with constant keys, the
//! bare `data` root...): a rule it cannot compile stays on the interpreter, named with the
//! compiler's reason ([`Engine`], `gitgate policies -v`), and a VM run that fails for any
//! reason but its time limit is run again on the interpreter, whose answer is the one given.
//! So the VM is only ever a faster way to the interpreter's result, never a new way to fail.
//! `gitgate test` (which needs `with`) never asks for the VM.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use regorus::rvm::RegoVM;
use regorus::rvm::vm::VmError;
use regorus::utils::limits::ExecutionTimerConfig;

use super::PolicyError;

/// Which Rego syntax a module is parsed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RegoVersion {
    /// `import rego.v1` → v1; otherwise v1 first, then v0 (the error of the attempt that got
    /// further is reported).
    #[default]
    Auto,
    V0,
    V1,
}

/// One Rego source module.
#[derive(Debug, Clone)]
pub struct Module {
    /// The file the module comes from, for errors (`library/x/template.yaml`).
    pub file: String,
    /// Lines before the module's first line in `file` (for Rego inside a YAML file).
    pub line_offset: usize,
    pub text: String,
    pub version: RegoVersion,
}

impl Module {
    pub fn new(file: impl Into<String>, text: impl Into<String>) -> Self {
        Module {
            file: file.into(),
            line_offset: 0,
            text: text.into(),
            version: RegoVersion::Auto,
        }
    }

    /// The same module read with `version`.
    pub fn with_version(mut self, version: RegoVersion) -> Self {
        self.version = version;
        self
    }
}

/// Which engine evaluates a rule or a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// regorus's compiled register VM.
    Vm,
    /// regorus's interpreter, with the reason the VM does not run it.
    Interpreter(String),
}

impl Engine {
    /// `vm`, or `interpreter (REASON)`.
    pub fn describe(&self) -> String {
        match self {
            Engine::Vm => "vm".to_string(),
            Engine::Interpreter(why) => format!("interpreter ({why})"),
        }
    }
}

/// One rule compiled for the VM, and the machines that run it: taken from `idle` for one
/// evaluation and put back after (a machine costs a few µs to set up; keeping them keeps its
/// registers and buffers allocated). A machine whose run panicked is dropped.
struct Compiled {
    program: Arc<regorus::rvm::Program>,
    idle: Mutex<Vec<RegoVM>>,
}

/// The most machines kept idle per rule: more than the threads that decide at once is waste.
const IDLE_MACHINES: usize = 64;

/// The VM's own instruction limit is a fuel gauge the interpreter does not have (its default,
/// 25,000, stops the built-in library on an ordinary Pod); the time limit is what bounds an
/// evaluation on both engines, so this is only a backstop far above any real policy.
const MAX_INSTRUCTIONS: usize = 1 << 40;

/// Why [`Program::compile_naming`] refused a program: the error, and each file an error names
/// with its own errors (empty when the error names none).
#[derive(Debug)]
pub struct Refused {
    pub error: PolicyError,
    pub files: Vec<(String, String)>,
}

impl Refused {
    fn whole(error: PolicyError) -> Self {
        Refused {
            error,
            files: Vec::new(),
        }
    }
}

/// A prepared Rego program.
#[derive(Clone)]
pub struct Program {
    engine: regorus::Engine,
    /// The package of each module, in order (`data.k8sallowedrepos`).
    pub packages: Vec<String>,
    /// The limit of one evaluation.
    timeout: Duration,
    /// The roots of the data document the modules read (`inventory` for `data.inventory`),
    /// or `None` when a module reads data in a way this cannot tell (`data[x]`).
    data_roots: Option<Vec<String>>,
    /// The rules compiled for the VM, by path (`data.k8sallowedrepos.violation`).
    vm: HashMap<String, Arc<Compiled>>,
    /// The rules the VM was asked to take and could not, with the compiler's reason.
    not_vm: HashMap<String, String>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("packages", &self.packages)
            .finish()
    }
}

impl Program {
    /// A program with no modules (a placeholder until the real one is compiled).
    pub fn empty() -> Program {
        Program {
            engine: regorus::Engine::new(),
            packages: Vec::new(),
            timeout: Duration::from_secs(1),
            data_roots: Some(Vec::new()),
            vm: HashMap::new(),
            not_vm: HashMap::new(),
        }
    }

    /// Parses and prepares `modules`, with `timeout` as the limit of each evaluation.
    pub fn compile(modules: &[Module], timeout: Duration) -> Result<Program, PolicyError> {
        Self::compile_naming(modules, timeout).map_err(|refused| refused.error)
    }

    /// [`Program::compile`], telling on refusal every file an error names, with that file's
    /// errors, so that a caller can leave them all out at once and compile the rest (a
    /// library of a thousand files with a hundred broken ones compiles in a few rounds, not
    /// a hundred): every file's syntax errors, every file's undefined functions; the engine's
    /// analysis stops at its first error, which names one file.
    pub fn compile_naming(modules: &[Module], timeout: Duration) -> Result<Program, Refused> {
        let first_file = modules
            .first()
            .map_or("<policy>", |m| m.file.as_str())
            .to_string();
        let mut engine = regorus::Engine::new();
        // OPA's default: a built-in function error makes its expression undefined.
        engine.set_strict_builtin_errors(false);
        // print() output is gathered and written attributed to what was evaluated.
        engine.set_gather_prints(true);
        super::host::register(&mut engine).map_err(|e| {
            Refused::whole(PolicyError::Compile {
                file: first_file.clone(),
                message: format!("registering host functions: {e}"),
            })
        })?;
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: timeout,
            check_interval: NonZeroU32::new(64).expect("non-zero"),
        });
        // regorus refuses a line longer than 1,024 columns; OPA has no such limit. A line stays
        // bounded by the file-size limit, which is kept.
        let mut limits = regorus::utils::limits::PolicyLengthConfig::default();
        limits.max_col =
            NonZeroU32::new(u32::try_from(limits.max_file_bytes.get()).unwrap_or(u32::MAX))
                .expect("non-zero");
        engine.set_policy_length_config(limits);
        let mut packages = Vec::with_capacity(modules.len());
        let names = super::compat::package_names(modules.iter().map(|m| m.text.as_str()));
        let mut unparsed: Vec<(String, PolicyError)> = Vec::new();
        for module in modules {
            match add_module(&mut engine, module, &names) {
                Ok(p) => packages.push(p),
                Err(e) => unparsed.push((module.file.clone(), e)),
            }
        }
        if !unparsed.is_empty() {
            let files = unparsed
                .iter()
                .map(|(f, e)| (f.clone(), e.to_string()))
                .collect();
            let (_, error) = unparsed.swap_remove(0);
            return Err(Refused { error, files });
        }
        // Analysis (unsafe variables, conflicts) happens on first use: do it now so that a
        // broken policy fails at load time, not on the request path.
        let file = first_file.as_str();
        if let Err(e) = engine.eval_query("true".to_string(), false) {
            let message = format_error(&e.to_string(), modules);
            // The file the error names (its location comes first).
            let named = modules
                .iter()
                .find(|m| {
                    message.starts_with(&format!("{}:", m.file))
                        || message.contains(&format!(": {}:", m.file))
                })
                .map(|m| m.file.clone());
            let error = PolicyError::Compile {
                file: named.clone().unwrap_or_else(|| file.to_string()),
                message,
            };
            let files = named
                .map(|f| vec![(f, error.to_string())])
                .unwrap_or_default();
            return Err(Refused { error, files });
        }
        // What regorus leaves to run time: undefined functions, wrong numbers of arguments.
        let problems = super::lint::check(engine.get_modules());
        if !problems.is_empty() {
            let located = |p: &super::lint::Problem| {
                let offset = modules
                    .iter()
                    .find(|m| m.file == p.file)
                    .map_or(0, |m| m.line_offset);
                super::lint::Problem {
                    line: p.line + offset as u32,
                    ..p.clone()
                }
                .to_string()
            };
            let listed = |problems: &[&super::lint::Problem]| {
                let shown: Vec<String> = problems.iter().take(10).map(|p| located(p)).collect();
                let more = problems.len().saturating_sub(shown.len());
                let mut message = shown.join("; ");
                if more > 0 {
                    message.push_str(&format!("; and {more} more"));
                }
                message
            };
            let mut by_file: Vec<(String, Vec<&super::lint::Problem>)> = Vec::new();
            for p in &problems {
                match by_file.iter_mut().find(|(f, _)| *f == p.file) {
                    Some((_, list)) => list.push(p),
                    None => by_file.push((p.file.clone(), vec![p])),
                }
            }
            let files = by_file
                .iter()
                .map(|(f, list)| {
                    let e = PolicyError::Compile {
                        file: f.clone(),
                        message: listed(list),
                    };
                    (f.clone(), e.to_string())
                })
                .collect();
            let all: Vec<&super::lint::Problem> = problems.iter().collect();
            let error = PolicyError::Compile {
                file: file.to_string(),
                message: listed(&all),
            };
            return Err(Refused { error, files });
        }
        Ok(Program {
            engine,
            packages,
            timeout,
            data_roots: data_roots(modules),
            vm: HashMap::new(),
            not_vm: HashMap::new(),
        })
    }

    /// Adds a module gitgate writes (the batch rules) to a compiled program, and prepares the
    /// program again.
    pub fn add_module(&mut self, module: &Module) -> Result<(), PolicyError> {
        self.packages.push(add_module(
            &mut self.engine,
            module,
            &std::collections::HashMap::new(),
        )?);
        if let (Some(roots), Some(more)) = (
            self.data_roots.as_mut(),
            data_roots(std::slice::from_ref(module)),
        ) {
            for root in more {
                if !roots.contains(&root) {
                    roots.push(root);
                }
            }
        } else {
            self.data_roots = None;
        }
        if let Err(e) = self.engine.eval_query("true".to_string(), false) {
            return Err(PolicyError::Compile {
                file: module.file.clone(),
                message: format_error(&e.to_string(), std::slice::from_ref(module)),
            });
        }
        Ok(())
    }

    /// Compiles each rule of `paths` (`data.pkg.violation`) for the VM, once; a rule the VM
    /// cannot take is remembered with the reason and stays on the interpreter. Never fails:
    /// the interpreter can always run what [`Program::compile`] accepted.
    pub fn compile_vm(&mut self, paths: &[String]) {
        let wanted: Vec<&String> = paths
            .iter()
            .filter(|p| !self.vm.contains_key(*p) && !self.not_vm.contains_key(*p))
            .collect();
        let Some(first) = wanted.first() else {
            return;
        };
        if let Some(why) = vm_decides_differently(self.engine.get_modules()) {
            for path in wanted {
                self.not_vm.insert(path.clone(), why.clone());
            }
            return;
        }
        let mut engine = self.engine.clone();
        let entry: regorus::Rc<str> = first.as_str().into();
        let policy = match crate::isolate::catch_panic(|| engine.compile_with_entrypoint(&entry)) {
            Ok(Ok(policy)) => policy,
            Ok(Err(e)) => {
                let why = first_line(&e.to_string());
                for path in wanted {
                    self.not_vm.insert(path.clone(), why.clone());
                }
                return;
            }
            Err(panic) => {
                for path in wanted {
                    self.not_vm
                        .insert(path.clone(), format!("the VM compiler panicked: {panic}"));
                }
                return;
            }
        };
        for path in wanted {
            let compiled = crate::isolate::catch_panic(|| {
                regorus::languages::rego::compiler::Compiler::compile_from_policy(
                    &policy,
                    &[path.as_str()],
                )
            });
            match compiled {
                Ok(Ok(program)) => {
                    self.vm.insert(
                        path.clone(),
                        Arc::new(Compiled {
                            program,
                            idle: Mutex::new(Vec::new()),
                        }),
                    );
                }
                Ok(Err(e)) => {
                    self.not_vm.insert(path.clone(), first_line(&e.to_string()));
                }
                Err(panic) => {
                    self.not_vm
                        .insert(path.clone(), format!("the VM compiler panicked: {panic}"));
                }
            }
        }
    }

    /// The engine that evaluates all of `paths`: the VM when it runs every one of them,
    /// otherwise the interpreter, with the reason of the first it does not run.
    pub fn engine_of(&self, paths: &[String]) -> Engine {
        for path in paths {
            if !self.vm.contains_key(path) {
                return Engine::Interpreter(
                    self.not_vm
                        .get(path)
                        .cloned()
                        .unwrap_or_else(|| "not compiled for the VM".to_string()),
                );
            }
        }
        if paths.is_empty() {
            Engine::Interpreter("no rule".to_string())
        } else {
            Engine::Vm
        }
    }

    /// Runs one rule on the VM: one machine from the idle ones (or a new one), given `input`
    /// and `data`, put back afterwards.
    fn run_vm(
        &self,
        compiled: &Compiled,
        input: regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<regorus::Value, VmError> {
        let idle = compiled.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut vm = idle.unwrap_or_else(|| {
            let mut vm = RegoVM::new();
            vm.load_program(compiled.program.clone());
            vm.set_max_instructions(MAX_INSTRUCTIONS);
            vm.set_strict_builtin_errors(false);
            vm.set_execution_timer_config(Some(ExecutionTimerConfig {
                limit: self.timeout,
                check_interval: NonZeroU32::new(64).expect("non-zero"),
            }));
            vm
        });
        // Data is given only when the program reads it, and taken back after, so that a
        // machine never keeps another request's data.
        if let Some(data) = data {
            vm.set_data(data.clone())?;
        }
        vm.set_input(input);
        let result = vm.execute_entry_point_by_index(0);
        vm.set_input(regorus::Value::Undefined);
        if data.is_some() {
            vm.set_data(regorus::Value::Null)?;
        }
        if let Ok(mut idle) = compiled.idle.lock()
            && idle.len() < IDLE_MACHINES
        {
            idle.push(vm);
        }
        result
    }

    /// Whether the modules may read `data.<root>` (extra data is only added for programs
    /// that read it: adding data makes the engine prepare its modules again).
    pub fn reads_data(&self, root: &str) -> bool {
        self.data_roots
            .as_ref()
            .is_none_or(|roots| roots.iter().any(|r| r == root))
    }

    /// The extra data this program reads, if any of it.
    fn wanted<'d>(&self, data: Option<&'d regorus::Value>) -> Option<&'d regorus::Value> {
        let data = data?;
        let roots = data.as_object().ok()?;
        roots
            .keys()
            .any(|k| k.as_string().is_ok_and(|k| self.reads_data(k)))
            .then_some(data)
    }

    /// Evaluates the rule at `path` (`data.pkg.violation`) with `input`, and extra `data`
    /// merged into the data document (a suite's inventory). Undefined is `Ok(None)`.
    ///
    /// On the VM when the rule was compiled for it ([`Program::compile_vm`]); a VM run that
    /// fails for another reason than its time limit is run again on the interpreter, within
    /// what is left of the limit.
    pub fn eval_rule(
        &self,
        path: &str,
        input: regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<Option<regorus::Value>, String> {
        let started = Instant::now();
        let data = self.wanted(data);
        let mut limit = self.timeout;
        if let Some(compiled) = self.vm.get(path) {
            // A Value's clone shares its contents: this is a reference count.
            let vm_input = input.clone();
            match self.guarded(started, || self.run_vm(compiled, vm_input, data))? {
                Ok(regorus::Value::Undefined) => return Ok(None),
                Ok(v) => return Ok(Some(v)),
                Err(e @ VmError::TimeLimitExceeded { .. }) => {
                    return Err(format!("execution exceeded the time limit: {e}"));
                }
                Err(e) => {
                    tracing::debug!(rule = path, error = %e, "the VM could not run a rule: the interpreter runs it");
                    limit = self.timeout.saturating_sub(started.elapsed());
                }
            }
        }
        let mut engine = self.engine.clone();
        if limit < self.timeout {
            engine.set_execution_timer_config(ExecutionTimerConfig {
                limit,
                check_interval: NonZeroU32::new(64).expect("non-zero"),
            });
        }
        if let Some(data) = data {
            engine.add_data(data.clone()).map_err(|e| e.to_string())?;
        }
        engine.set_input(input);
        let result = self.guarded(started, || engine.eval_rule(path.to_string()));
        emit_prints(&mut engine, path);
        match result? {
            Ok(regorus::Value::Undefined) => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(format_error(&e.to_string(), &[])),
        }
    }

    /// Runs one evaluation so that nothing in it can take the caller down or overstay:
    /// a panic inside the engine (a built-in that divides by zero) becomes an error, and an
    /// evaluation that returns after its limit is an error even when the engine's own timer
    /// did not fire (it is read between steps, never inside a long built-in call such as
    /// `numbers.range(1, 1e8)`).
    /// `started` is when the evaluation began (a rule the VM gave back to the interpreter is
    /// one evaluation).
    fn guarded<T>(&self, started: Instant, f: impl FnOnce() -> T) -> Result<T, String> {
        let result = crate::isolate::catch_panic(f)
            .map_err(|panic| format!("the Rego engine panicked: {panic}"))?;
        let elapsed = started.elapsed();
        if elapsed > self.timeout {
            return Err(format!(
                "execution exceeded the time limit of {} (took {})",
                humantime::format_duration(self.timeout),
                humantime::format_duration(Duration::from_millis(elapsed.as_millis() as u64))
            ));
        }
        Ok(result)
    }
}

/// One evaluation with what a test runner wants beside the value: the `print()` output and
/// the lines it covered.
pub struct Traced {
    pub value: Result<Option<regorus::Value>, String>,
    pub prints: Vec<String>,
    pub coverage: Option<regorus::coverage::Report>,
}

impl Program {
    /// The same program with `data` as its base data document (data files beside policies),
    /// prepared again once here rather than on every evaluation.
    pub fn with_data(mut self, data: regorus::Value) -> Result<Program, String> {
        self.engine.add_data(data).map_err(|e| e.to_string())?;
        self.engine
            .eval_query("true".to_string(), false)
            .map_err(|e| format_error(&e.to_string(), &[]))?;
        Ok(self)
    }

    /// Evaluates a query, as `opa eval` does, with `input` when given: OPA's JSON result
    /// shape (`{"result": [{"expressions": [...], "bindings": {...}}]}`, `{}` when undefined).
    pub fn eval_query(
        &self,
        query: &str,
        input: Option<regorus::Value>,
    ) -> Result<serde_json::Value, String> {
        let mut engine = self.engine.clone();
        if let Some(input) = input {
            engine.set_input(input);
        }
        let results = self.guarded(Instant::now(), || {
            engine.eval_query(query.to_string(), false)
        });
        emit_prints(&mut engine, query);
        let results = results?.map_err(|e| format_error(&e.to_string(), &[]))?;
        serde_json::to_value(&results).map_err(|e| e.to_string())
    }

    /// Evaluates the rule at `path`, gathering `print()` output and, when asked, coverage.
    pub fn eval_traced(&self, path: &str, input: regorus::Value, coverage: bool) -> Traced {
        let mut engine = self.engine.clone();
        engine.set_gather_prints(true);
        engine.set_enable_coverage(coverage);
        engine.set_input(input);
        let value = match self.guarded(Instant::now(), || engine.eval_rule(path.to_string())) {
            Err(e) => Err(e),
            Ok(Ok(regorus::Value::Undefined)) => Ok(None),
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(e)) => Err(format_error(&e.to_string(), &[])),
        };
        Traced {
            value,
            prints: engine.take_prints().unwrap_or_default(),
            coverage: coverage
                .then(|| engine.get_coverage_report().ok())
                .flatten(),
        }
    }
}

impl Program {
    /// Evaluates several rules in one pass, so that what they share (library helpers, the
    /// pod spec, the list of containers) is computed once. Each result is `None` when the
    /// rule is undefined. An error of any rule fails the whole pass.
    pub fn eval_rules(
        &self,
        paths: &[String],
        input: regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<Vec<Option<regorus::Value>>, String> {
        let mut engine = self.engine.clone();
        if let Some(data) = self.wanted(data) {
            engine.add_data(data.clone()).map_err(|e| e.to_string())?;
        }
        engine.set_input(input);
        // `[x | x := rule]` is `[]` when the rule is undefined, so one undefined rule does not
        // make the whole array undefined.
        let query = format!(
            "[{}]",
            paths
                .iter()
                .map(|p| format!("[x | x := {p}]"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let results = self.guarded(Instant::now(), || engine.eval_query(query, false));
        emit_prints(&mut engine, &packages_of(paths));
        let results = results?.map_err(|e| format_error(&e.to_string(), &[]))?;
        let value = results
            .result
            .first()
            .and_then(|r| r.expressions.first())
            .map(|e| e.value.clone())
            .ok_or_else(|| "the evaluation produced no result".to_string())?;
        let items = value.as_array().map_err(|e| e.to_string())?;
        if items.len() != paths.len() {
            return Err(format!(
                "expected {} results, got {}",
                paths.len(),
                items.len()
            ));
        }
        Ok(items
            .iter()
            .map(|one| one.as_array().ok().and_then(|a| a.first().cloned()))
            .collect())
    }
}

impl Program {
    /// Evaluates the rules `paths` through a precompiled [`Batch`](super::Batch) rule, which
    /// may hold more entries than asked for (policies that did not match the document).
    pub fn eval_batch(
        &self,
        batch: &super::Batch,
        paths: &[String],
        input: regorus::Value,
        data: Option<&regorus::Value>,
    ) -> Result<Vec<Option<regorus::Value>>, String> {
        let value = self
            .eval_rule(&batch.path, input, data)?
            .ok_or_else(|| format!("{} is undefined", batch.path))?;
        let items = value.as_array().map_err(|e| e.to_string())?;
        paths
            .iter()
            .map(|path| {
                let at = batch
                    .entries
                    .iter()
                    .position(|(pkg, rule)| {
                        path.len() == pkg.len() + 1 + rule.len()
                            && path.starts_with(pkg.as_str())
                            && path.ends_with(rule.as_str())
                    })
                    .ok_or_else(|| format!("{path} is not in {}", batch.path))?;
                let one = items
                    .get(at)
                    .ok_or_else(|| format!("{} has too few results", batch.path))?;
                Ok(one.as_array().ok().and_then(|a| a.first().cloned()))
            })
            .collect()
    }
}

/// Writes what `print()` gathered during an evaluation to stderr, each line attributed to
/// what was evaluated (`print: data.pkg.deny: policy.rego:12: value`), as OPA writes it
/// beside `opa eval`'s result; without the label, lines of concurrent decisions could not be
/// told apart.
fn emit_prints(engine: &mut regorus::Engine, label: &str) {
    for line in engine.take_prints().unwrap_or_default() {
        eprintln!("print: {label}: {line}");
    }
}

/// The packages of rule paths (`data.a.deny, data.b.warn` → `data.a, data.b`), once each.
fn packages_of(paths: &[String]) -> String {
    let mut packages: Vec<&str> = Vec::new();
    for p in paths {
        let package = p.rsplit_once('.').map_or(p.as_str(), |(pkg, _)| pkg);
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages.join(", ")
}

/// Why regorus 0.14's VM would decide a program differently from the interpreter, if it
/// would: a rule that could produce two values (a conflict is an error on the interpreter, as
/// in OPA, not on the VM: `super::conflicts`), a call of a host function, or a function with a `_` parameter (`accept("RunAsAny", _, _)`, as the
/// gatekeeper-library's `K8sPSPAllowedUsers` has). The VM takes such a call as undefined when
/// every argument is defined, and as defined when the argument under `_` is undefined, the
/// opposite of the interpreter (and of OPA) both times; tests/rego_engines.rs found it on the
/// library's suites. The whole program stays on the interpreter: whether a rule reaches the
/// function is not worth guessing.
fn vm_decides_differently(
    modules: &[regorus::unstable::Ref<regorus::unstable::Module>],
) -> Option<String> {
    use regorus::unstable::{Rule, RuleHead};
    let wildcard = |text: &str| {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|token| token == "_")
    };
    // A complete rule, function or partial object that could produce two values: OPA and
    // the interpreter report the conflict, the VM keeps the last value.
    if let Some(why) = super::conflicts::first(modules) {
        return Some(why);
    }
    for module in modules {
        // The host functions (`super::host`) are the interpreter's extensions; the VM
        // compiles a call of the same name to regorus's own built-in, which is what the host
        // function is there to replace (a pattern over regorus's size limit is undefined, an
        // empty array as a subset panics): a decision would differ from `gitgate test`'s.
        let source = module.package.span.source.clone();
        if let Some((line, name)) = host_call(source.contents()) {
            return Some(format!(
                "{}:{line}: calls {name}, which gitgate provides to the interpreter only (regorus's VM has its own, which differs)",
                source.file()
            ));
        }
        for rule in &module.policy {
            if let Rule::Spec {
                head: RuleHead::Func { refr, args, .. },
                ..
            } = rule.as_ref()
                && args.iter().any(|a| wildcard(a.span().text()))
            {
                let span = refr.span();
                return Some(format!(
                    "{}:{}: function {} has a `_` parameter, which regorus's VM decides differently",
                    span.source.file(),
                    span.line,
                    span.text()
                ));
            }
        }
    }
    None
}

/// The first call of a host function in a module's code (not in a string or a comment): its
/// line and name.
fn host_call(text: &str) -> Option<(usize, &'static str)> {
    static CALL: LazyLock<regex::Regex> = LazyLock::new(|| {
        let names: Vec<String> = super::host::FUNCTIONS
            .iter()
            .map(|(name, _)| regex::escape(name))
            .collect();
        regex::Regex::new(&format!(r"(?:^|[^\w.])({})\s*\(", names.join("|")))
            .expect("a valid regex")
    });
    let mask = super::compat::code_mask(text);
    CALL.captures_iter(text).find_map(|c| {
        let name = c.get(1)?;
        if !mask.get(name.start()).copied().unwrap_or(false) {
            return None;
        }
        let line = text[..name.start()].matches('\n').count() + 1;
        super::host::FUNCTIONS
            .iter()
            .find(|(f, _)| *f == name.as_str())
            .map(|(f, _)| (line, *f))
    })
}

/// The first line of a message (the VM compiler's errors carry a source snippet).
fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("the VM cannot compile this rule")
        .to_string()
}

/// The roots of `data` that modules name (`data.inventory...`, `import data.inventory`), or
/// `None` when one indexes `data` itself (`data[x]`), which could read any root.
fn data_roots(modules: &[Module]) -> Option<Vec<String>> {
    let mut roots: Vec<String> = Vec::new();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    for text in modules.iter().map(|m| m.text.as_str()) {
        // Only code: comments often say "data", and a `#` inside a string is no comment
        // (cutting lines at the first `#` lost `data.inventory` after `tag := "#";`, and
        // with it the inventory a policy reads).
        let mask = super::compat::code_mask(text);
        for (at, _) in text.match_indices("data") {
            if !mask.get(at).copied().unwrap_or(false) {
                continue;
            }
            let before = text[..at].chars().next_back();
            let rest = &text[at + 4..];
            if before.is_some_and(|c| word(c) || c == '.') || rest.starts_with(word) {
                continue; // metadata, input.data, dataset
            }
            let Some(path) = rest.strip_prefix('.') else {
                return None; // data[x], or data itself
            };
            let root: String = path.chars().take_while(|c| word(*c)).collect();
            if root.is_empty() {
                return None;
            }
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
    }
    Some(roots)
}

/// Adds one module with its syntax version; errors name the file and the line in that file.
fn add_module(
    engine: &mut regorus::Engine,
    module: &Module,
    names: &std::collections::HashMap<String, super::compat::Names>,
) -> Result<String, PolicyError> {
    let package = super::load::package_of(&module.text);
    let package = package
        .as_deref()
        .and_then(|p| names.get(p.trim_start_matches("data.")));
    let text = super::compat::rewrite_with(&module.text, package, Some(names));
    let attempt = |engine: &mut regorus::Engine, v0: bool| {
        engine.set_rego_v0(v0);
        engine.add_policy(module.file.clone(), text.clone())
    };
    let result = match module.version {
        RegoVersion::V0 => attempt(engine, true),
        RegoVersion::V1 => attempt(engine, false),
        RegoVersion::Auto if declares_v1(&module.text) => attempt(engine, false),
        // v1 first: a v1 module can parse as v0 (with `if` as an identifier) and mean
        // something else, while v0 rule bodies without `if` never parse as v1.
        RegoVersion::Auto => match attempt(engine, false) {
            Ok(p) => Ok(p),
            Err(v1_err) => match attempt(engine, true) {
                Ok(p) => Ok(p),
                Err(v0_err) => {
                    let line = |e: &anyhow::Error| error_line(&e.to_string(), &module.file);
                    Err(if line(&v1_err) > line(&v0_err) {
                        v1_err
                    } else {
                        v0_err
                    })
                }
            },
        },
    };
    result.map_err(|e| PolicyError::Compile {
        file: module.file.clone(),
        message: format_error(&e.to_string(), std::slice::from_ref(module)),
    })
}

fn declares_v1(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("import rego.v1"))
}

/// The line number in a regorus error `file:LINE:COL: ...`, or 0.
fn error_line(message: &str, file: &str) -> usize {
    message
        .find(&format!("{file}:"))
        .and_then(|at| {
            message[at + file.len() + 1..]
                .split(':')
                .next()
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Turns a regorus error (`--> file:LINE:COL`, a source snippet, `error: message`) into one
/// line `file:LINE:COL: message`, with LINE counted in the real file (Rego inside YAML is
/// shifted by its module's offset).
pub(crate) fn format_error(raw: &str, modules: &[Module]) -> String {
    let raw = raw.trim();
    let message = raw
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string);
    let location = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::to_string);
    let (Some(location), Some(message)) = (location, message) else {
        return raw
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(raw)
            .trim()
            .to_string();
    };
    let mut location = location;
    for m in modules {
        let line = error_line(&location, &m.file);
        if line > 0 && m.line_offset > 0 {
            location = location.replacen(
                &format!("{}:{}:", m.file, line),
                &format!("{}:{}:", m.file, line + m.line_offset),
                1,
            );
            break;
        }
    }
    format!("{location}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Result<Program, PolicyError> {
        Program::compile(&[Module::new("p.rego", text)], Duration::from_secs(1))
    }

    #[test]
    fn host_calls_are_found_in_code_only() {
        assert_eq!(
            host_call("package p\nx if { startswith(input.a, \"#\"); regex.match(`a`, \"b\") }\n"),
            Some((2, "regex.match"))
        );
        assert_eq!(
            host_call(
                "package p\n# regex.match(a)\nm := \"object.subset(x)\"\nn := myregex.match(1)\n"
            ),
            None
        );
        assert_eq!(
            host_call("package p\ny if {\n  not object.subset(a, b)\n}\n"),
            Some((3, "object.subset"))
        );
    }

    #[test]
    fn data_roots_are_the_roots_named() {
        let roots = |text: &str| data_roots(&[Module::new("p.rego", text)]);
        let gk = "package k\n# reads data from the cluster\nviolation[{\"msg\": m}] {\n  other := data.inventory.namespace[_]\n  input.review.object.metadata.name == \"x\"\n  m := \"x\"\n}\n";
        assert_eq!(roots(gk), Some(vec!["inventory".to_string()]));
        assert_eq!(
            roots("package a\nimport data.lib.workloads\nx := input.data.y\n"),
            Some(vec!["lib".to_string()])
        );
        assert_eq!(roots("package a\nx := data[\"inventory\"]\n"), None);
        // A `#` in a string is no comment; `data` in a string or a comment is no read.
        assert_eq!(
            roots("package a\nx if { t := \"#\"; o := data.inventory.cluster[_] }\n"),
            Some(vec!["inventory".to_string()])
        );
        assert_eq!(
            roots("package a\nx := \"data.secrets\" # data.other\ny := `data.raw`\n"),
            Some(vec![])
        );
        let p = compile("package a\nx := 1\n").unwrap();
        assert!(!p.reads_data("inventory"));
        let p = compile("package a\nx := count(data.inventory)\n").unwrap();
        assert!(p.reads_data("inventory"));
    }

    #[test]
    fn v0_and_v1_modules_both_load() {
        let v0 = compile("package a\nviolation[{\"msg\": m}] { m := \"x\" }\n").unwrap();
        let v1 = compile("package b\nviolation contains {\"msg\": m} if { m := \"x\" }\n").unwrap();
        assert_eq!(v0.packages, vec!["data.a"]);
        let r = v1
            .eval_rule("data.b.violation", regorus::Value::new_object(), None)
            .unwrap()
            .unwrap();
        assert_eq!(r.as_set().unwrap().len(), 1);
    }

    #[test]
    fn compile_error_names_file_and_line() {
        let err = compile("package a\n\nviolation contains x if {\n  x := \n}\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("p.rego:4:") || msg.contains("p.rego:5:"),
            "{msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
    }

    #[test]
    fn line_offset_applies() {
        let m = Module {
            file: "t.yaml".into(),
            line_offset: 10,
            text: "package a\nx := {\n".into(),
            version: RegoVersion::Auto,
        };
        let err = Program::compile(&[m], Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("t.yaml:13:"), "{err}");
    }

    #[test]
    fn long_lines_are_accepted() {
        let long = format!(
            "package a\nx := [{}]\n",
            vec!["\"abcdefgh\""; 400].join(", ")
        );
        let p = compile(&long).unwrap();
        let x = p.eval_rule("data.a.x", regorus::Value::new_object(), None);
        assert_eq!(x.unwrap().unwrap().as_array().unwrap().len(), 400);
    }

    #[test]
    fn json_patch_is_there() {
        let p = compile("package a\nx := json.patch({\"a\": 1}, [{\"op\": \"add\", \"path\": \"/b\", \"value\": 2}])\n").unwrap();
        let x = p.eval_rule("data.a.x", regorus::Value::new_object(), None);
        assert_eq!(x.unwrap().unwrap()["b"], regorus::Value::from(2));
    }

    #[test]
    fn runtime_timeout_is_an_error() {
        let p = compile(
            "package a\nimport rego.v1\nslow contains n if { some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); n := i * j }\n",
        )
        .unwrap();
        let mut fast = p.clone();
        fast.engine
            .set_execution_timer_config(ExecutionTimerConfig {
                limit: Duration::from_millis(20),
                check_interval: NonZeroU32::new(1).unwrap(),
            });
        let err = fast
            .eval_rule("data.a.slow", regorus::Value::new_object(), None)
            .unwrap_err();
        assert!(!err.is_empty());
    }
}
