//! The `p2plab` binary: parses the command line and calls the library crates.

mod wrap;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "p2plab",
    version,
    about = "Emulate networks of many peers on Linux hosts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Wrap(wrap::WrapArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Wrap(args) => wrap::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2plab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
