//! `p2plab check` and `p2plab plan`: validate a topology file and show what it plans.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Validate a topology file and print a short summary.
#[derive(Args)]
#[command(
    after_help = "Example:\n  p2plab check topologies/quickstart.yaml\n\nExits 0 when the file is valid, 1 with every error found otherwise."
)]
pub struct CheckArgs {
    /// The topology file (YAML).
    pub file: PathBuf,
}

/// Print every node of a topology: name, address, group and link parameters.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab plan topologies/quickstart.yaml\n  p2plab plan topologies/quickstart.yaml --format json | jq '.nodes[0]'"
)]
pub struct PlanArgs {
    /// The topology file (YAML).
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub(crate) fn load(file: &std::path::Path) -> Result<topology::Plan> {
    topology::load(file).map_err(|d| {
        let count = d.len();
        anyhow::anyhow!(
            "{d}\n{count} error{} in {}",
            if count == 1 { "" } else { "s" },
            file.display()
        )
    })
}

pub fn check(args: &CheckArgs) -> Result<()> {
    let plan = load(&args.file)?;
    crate::output::emit(&format!(
        "{}: valid\n{}",
        args.file.display(),
        topology::summary(&plan)
    ))
}

pub fn plan(args: &PlanArgs) -> Result<()> {
    let plan = load(&args.file)?;
    crate::output::emit(&match args.format {
        Format::Table => topology::plan_table(&plan),
        Format::Json => topology::plan_json(&plan) + "\n",
    })
}
