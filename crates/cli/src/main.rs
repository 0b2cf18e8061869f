//! The `p2plab` binary: parses the command line with clap and calls the library crates.
//! Each command group lives in its own module; nothing here does the work itself.

mod agent;
mod change;
mod doctor;
mod down;
mod engine;
mod exit;
mod output;
mod probe;
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
#[command(
    name = "p2plab",
    version,
    propagate_version = true,
    after_help = "Output: results go to stdout, progress, warnings and errors to stderr. -q leaves out\nthe progress display and warnings; -v prints progress as plain lines every second (with\nthe phase and the stop rule's countdown) instead of a bar, also on a terminal. Help and\nerrors are coloured on a terminal unless NO_COLOR is set (to anything non-empty)."
)]
struct Cli {
    /// No progress display and no warnings (results and errors only).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Progress as plain lines every second, with the phase, also on a terminal.
    #[arg(short, long, global = true)]
    verbose: bool,
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
    Probe(probe::ProbeArgs),
    Exec(wrap::ExecArgs),
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

/// The command line as completions offer it: without the hidden subcommands (`engine`,
/// `agent`), which clap_complete would list.
fn completed() -> clap::Command {
    let cli = Cli::command();
    let visible: Vec<clap::Command> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("p2plab")
        .args(cli.get_arguments().cloned())
        .subcommands(visible)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::set_verbosity(cli.quiet, cli.verbose);
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
        Command::Probe(args) => probe::probe(&args),
        Command::Exec(args) => wrap::exec(args),
        Command::Engine(args) => engine::engine(&args),
        Command::Agent(args) => agent::agent(&args),
        Command::Completions(args) => {
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut completed(), "p2plab", &mut script);
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
