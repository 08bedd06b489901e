//! The `gitgate` binary: a thin shell around [`gitgate::cli`].

/// mimalloc: Rego evaluation allocates many small values, and the system allocator costs a
/// third of a decision's time (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gitgate::cli::main()
}
