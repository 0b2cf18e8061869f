//! `p2plab check` and `p2plab plan`: validate a topology or experiment file and show what it
//! plans. `check` refuses an experiment for everything `run` would refuse in it, and warns
//! when this machine lacks the preload shim `run` needs.

use anyhow::Result;
use clap::{Args, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Validate a topology or experiment file and print a short summary.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab check topologies/quickstart.yaml\n  p2plab check examples/quickstart.yaml\n  p2plab check examples/quickstart.yaml --json\n\nAn experiment file (one with `roles:`) is checked with the topology and scenario it names.\nExits 0 when the files are valid, 2 with every error found otherwise."
)]
pub struct CheckArgs {
    /// The topology or experiment file (YAML).
    pub file: PathBuf,
    /// The shim library `run` would use [default: $P2PLAB_SHIM, else libp2plab_shim.so beside p2plab].
    #[arg(long, value_name = "PATH")]
    pub shim: Option<PathBuf>,
    /// Print the result as JSON (the errors with file, line, column and field; exit status
    /// as without it).
    #[arg(long)]
    pub json: bool,
}

/// Print every node of a topology: name, address, group and link parameters.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab plan topologies/quickstart.yaml\n  p2plab plan topologies/quickstart.yaml --json | jq '.nodes[0]'"
)]
pub struct PlanArgs {
    /// The topology file (YAML).
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
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

/// The topology file `file` for `p2plab COMMAND`; an experiment file is refused with the
/// topology it names.
pub(crate) fn load(file: &Path, command: &str) -> Result<topology::Plan> {
    if let Some(exp) = experiment_yaml(file) {
        let shown = file.display();
        let what = match exp.get("topology") {
            Some(serde_yaml_ng::Value::String(rel)) => {
                let topology = file.parent().unwrap_or(Path::new("")).join(rel);
                format!(
                    "it names topology {}: run `p2plab {command} {}`",
                    topology.display(),
                    topology.display()
                )
            }
            _ => format!(
                "its topology is inline: move it to a file of its own to `{command}` it, or `p2plab run {shown}`"
            ),
        };
        return Err(crate::exit::bad_input(format!(
            "{shown} is an experiment file (it has `roles`); {what}"
        )));
    }
    topology::load(file).map_err(|d| failed(file, d))
}

/// The top-level mapping of `file` when it is an experiment (it has `roles`). A file that is
/// not valid YAML is an experiment when one of its lines starts with `roles:`, so that its
/// syntax error is reported as an experiment's.
fn experiment_yaml(file: &Path) -> Option<serde_yaml_ng::Mapping> {
    let text = std::fs::read_to_string(file).ok()?;
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text) {
        Ok(serde_yaml_ng::Value::Mapping(map)) => map.contains_key("roles").then_some(map),
        Ok(_) => None,
        Err(_) => text
            .lines()
            .any(|l| {
                l.strip_prefix("roles")
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            })
            .then(serde_yaml_ng::Mapping::new),
    }
}

/// What `check` found in a valid file: its kind, its summary and the warnings about this
/// machine.
struct Checked {
    kind: &'static str,
    summary: String,
    warnings: Vec<String>,
}

fn checked(args: &CheckArgs) -> Result<Checked, topology::Diagnostics> {
    if experiment_yaml(&args.file).is_none() {
        let plan = topology::load(&args.file)?;
        return Ok(Checked {
            kind: "topology",
            summary: topology::summary(&plan),
            warnings: vec![],
        });
    }
    let e = runner::load(&args.file)?;
    // A warning, not an error: the file is valid wherever it is checked, and the shim is
    // this machine's (as are root and a free network name, which `run` checks too).
    let warnings = launch::wrap::find_shim(args.shim.as_deref())
        .err()
        .map(|e| format!("`p2plab run` will refuse to start here: {e}"))
        .into_iter()
        .collect();
    Ok(Checked {
        kind: "experiment",
        summary: format!("{}{}", experiment::summary(&e), topology::summary(&e.plan)),
        warnings,
    })
}

pub fn check(args: &CheckArgs) -> Result<()> {
    let file = args.file.display().to_string();
    match (checked(args), args.json) {
        (Ok(c), false) => {
            for w in &c.warnings {
                crate::output::warn(w);
            }
            crate::output::emit(&format!("{file}: valid\n{}", c.summary))
        }
        (Ok(c), true) => crate::output::emit_json(&json!({
            "file": file, "valid": true, "kind": c.kind,
            "summary": c.summary.lines().collect::<Vec<_>>(), "warnings": c.warnings,
        })),
        (Err(d), false) => Err(failed(&args.file, d)),
        (Err(d), true) => {
            let errors: Vec<serde_json::Value> =
                d.0.iter()
                    .map(|e| {
                        json!({"file": e.file.display().to_string(), "line": e.line,
                           "column": e.column, "field": e.path, "message": e.message, "fix": e.fix})
                    })
                    .collect();
            crate::output::emit_json(&json!({"file": file, "valid": false, "errors": errors}))?;
            let n = d.len();
            Err(crate::exit::bad_input(format!(
                "{n} error{} in {file}",
                if n == 1 { "" } else { "s" }
            )))
        }
    }
}

pub fn plan(args: &PlanArgs) -> Result<()> {
    let plan = load(&args.file, "plan")?;
    let format = if args.json { Format::Json } else { args.format };
    crate::output::emit(&match format {
        Format::Table => topology::plan_table(&plan),
        Format::Json => topology::plan_json(&plan) + "\n",
    })
}
