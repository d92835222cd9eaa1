//! The `slipway` binary: parse the command line and run one command.

use std::process::ExitCode;

use clap::Parser;

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
