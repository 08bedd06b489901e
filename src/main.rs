//! The `gitgate` binary: a thin shell around [`gitgate::cli`].

// The allocator is mimalloc, set by regorus itself (its `allocator-memory-limits` feature):
// Rego evaluation allocates many small values, and the system allocator costs a third of a
// decision's time (see BENCHMARKS.md); regorus's build of it counts what is allocated, so that
// an evaluation stops at `policies.memoryLimit` (crate::setup::memory_limit).

fn main() -> std::process::ExitCode {
    gitgate::cli::main()
}
