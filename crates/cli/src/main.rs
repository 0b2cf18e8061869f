//! The `p2plab` binary: parses the command line with clap and calls the library crates.
//! Each command group lives in its own module; nothing here does the work itself.

mod agent;
mod change;
mod doctor;
mod down;
mod engine;
mod exit;
mod output;
mod report;
mod run;
mod status;
mod sweep;
mod topo;
mod up;
mod wrap;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Emulate networks of thousands of peers on Linux hosts.
#[derive(Parser)]
#[command(name = "p2plab", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Check(topo::CheckArgs),
    Plan(topo::PlanArgs),
    Run(run::RunArgs),
    Sweep(sweep::SweepArgs),
    Report(report::ReportArgs),
    Wrap(wrap::WrapArgs),
    Completions(CompletionsArgs),
    Up(up::UpArgs),
    Down(down::DownArgs),
    Status(status::StatusArgs),
    Change(change::ChangeArgs),
    Doctor(doctor::DoctorArgs),
    #[command(hide = true)]
    Engine(engine::EngineArgs),
    #[command(hide = true)]
    Agent(agent::AgentArgs),
}

/// Print a shell completion script.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  p2plab completions bash > /etc/bash_completion.d/p2plab")]
struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => topo::check(&args),
        Command::Plan(args) => topo::plan(&args),
        Command::Run(args) => run::run(&args),
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Report(args) => report::run(&args),
        Command::Wrap(args) => wrap::run(args),
        Command::Up(args) => up::up(&args),
        Command::Down(args) => down::down(&args),
        Command::Status(args) => status::status(&args),
        Command::Change(args) => change::change(&args),
        Command::Doctor(args) => doctor::doctor(&args),
        Command::Engine(args) => engine::engine(&args),
        Command::Agent(args) => agent::agent(&args),
        Command::Completions(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "p2plab", &mut script);
            output::emit(&String::from_utf8_lossy(&script))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(exit::status(&e))
        }
    }
}
