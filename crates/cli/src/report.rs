//! `p2plab report`: render the statistics of a finished run from its result directory.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Summarise a run from its result directory: completion times, fairness, failures.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab report results/swarm-20261121-2344\n  p2plab report results/swarm-20261121-2344 --format json | jq '.groups'\n  p2plab report results/swarm-20261121-2344 --format html"
)]
pub struct ReportArgs {
    /// The result directory written by `p2plab run` (holds run.json, processes.csv, metrics.csv).
    pub dir: PathBuf,
    /// text: summary on stdout; json: the statistics on stdout; html: (re)write DIR/report.html and print its path.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let analysis =
        || -> Result<::report::Analysis> { Ok(::report::analyse(&results::load(&args.dir)?)) };
    crate::output::emit(&match args.format {
        Format::Text => ::report::text(&analysis()?),
        Format::Json => ::report::json(&analysis()?) + "\n",
        Format::Html => format!("{}\n", ::report::write_html(&args.dir)?.display()),
    })
}
