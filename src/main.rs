//! The `slipway` binary: parse the command line and run one command.

use std::process::ExitCode;

use clap::Parser;

/// Configurations of thousands of deployments allocate millions of small
/// objects; mimalloc makes that markedly cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = slipway::cli::normalize_args(std::env::args_os());
    let cli = match slipway::cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // --help and --version print and succeed; a usage error exits 1 as
        // every other error does (2 means "changes present" for plan).
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 1 } else { 0 });
        }
    };
    match slipway::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(1)
        }
    }
}
