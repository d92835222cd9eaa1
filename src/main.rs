//! The `slipway` binary: parse the command line and run one command.

use std::process::ExitCode;

use clap::Parser;

/// Configurations of thousands of deployments allocate millions of small
/// objects; mimalloc makes that markedly cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = slipway::cli::normalize_args(std::env::args_os());
    let cli = slipway::cli::Cli::parse_from(args);
    match slipway::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("Error: {error:#}");
            ExitCode::from(1)
        }
    }
}
