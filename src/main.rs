//! The `gitgate` binary: a thin shell around [`gitgate::cli`].

fn main() -> std::process::ExitCode {
    gitgate::cli::main()
}
