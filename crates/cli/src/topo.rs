//! `p2plab check` and `p2plab plan`: validate a topology file and show what it plans.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// Validate a topology or experiment file and print a short summary.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab check topologies/quickstart.yaml\n  p2plab check experiment.yaml\n\nAn experiment file (one with `roles:`) is checked with the topology and scenario it names.\nExits 0 when the files are valid, 2 with every error found otherwise."
)]
pub struct CheckArgs {
    /// The topology or experiment file (YAML).
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

/// Turns diagnostics into the command's error: every line, then a count.
fn failed(file: &Path, d: topology::Diagnostics) -> anyhow::Error {
    let count = d.len();
    let plural = if count == 1 { "" } else { "s" };
    crate::exit::bad_input(format!("{d}\n{count} error{plural} in {}", file.display()))
}

pub(crate) fn load(file: &Path) -> Result<topology::Plan> {
    topology::load(file).map_err(|d| failed(file, d))
}

/// Whether `file` is an experiment (a mapping with `roles`) rather than a topology.
fn is_experiment(file: &Path) -> bool {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| serde_yaml_ng::from_str::<serde_yaml_ng::Mapping>(&text).ok())
        .is_some_and(|map| map.contains_key("roles"))
}

pub fn check(args: &CheckArgs) -> Result<()> {
    let text = if is_experiment(&args.file) {
        let e = experiment::load(&args.file).map_err(|d| failed(&args.file, d))?;
        format!("{}{}", experiment::summary(&e), topology::summary(&e.plan))
    } else {
        topology::summary(&load(&args.file)?)
    };
    crate::output::emit(&format!("{}: valid\n{text}", args.file.display()))
}

pub fn plan(args: &PlanArgs) -> Result<()> {
    let plan = load(&args.file)?;
    crate::output::emit(&match args.format {
        Format::Table => topology::plan_table(&plan),
        Format::Json => topology::plan_json(&plan) + "\n",
    })
}
