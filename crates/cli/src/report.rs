//! `p2plab report`: render the statistics of a finished run from its result directory, or
//! compare several runs.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// Summarise a run from its result directory: completion times, fairness, failures; or
/// compare several runs: completion-time CDFs, medians, KS distance between each pair.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab report results/swarm-2026-12-01T04-33-10Z\n  p2plab report results/swarm-2026-12-01T04-33-10Z --format json | jq '.groups'\n  p2plab report results/swarm-2026-12-01T04-33-10Z --format html\n  p2plab report results/before-2026-12-01T04-33-10Z results/after-2026-12-01T05-10-02Z --format html --out compare.html"
)]
pub struct ReportArgs {
    /// The result directory written by `p2plab run` (holds run.json, processes.csv, metrics.csv); several to compare runs.
    #[arg(required = true, num_args = 1.., value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// text: summary on stdout; json: the statistics on stdout; html: (re)write DIR/report.html (or, comparing runs, the --out page) and print its path.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Where the page comparing several runs goes with --format html (default: comparison.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Html,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let comparison_page = args.dirs.len() > 1 && matches!(args.format, Format::Html);
    if let (Some(out), false) = (&args.out, comparison_page) {
        return Err(crate::exit::bad_input(format!(
            "--out {} is where the page comparing several runs goes: give several result directories and --format html, or leave --out out",
            out.display()
        )));
    }
    if let [dir] = &args.dirs[..] {
        let analysis =
            || -> Result<::report::Analysis> { Ok(::report::analyse(&results::load(dir)?)) };
        return crate::output::emit(&match args.format {
            Format::Text => ::report::text(&analysis()?),
            Format::Json => ::report::json(&analysis()?) + "\n",
            Format::Html => format!("{}\n", ::report::write_html(dir)?.display()),
        });
    }
    let comparison = ::report::compare(&args.dirs)?;
    crate::output::emit(&match args.format {
        Format::Text => comparison.to_string(),
        Format::Json => comparison.json() + "\n",
        Format::Html => {
            // An absolute path: a bare file name has an empty parent directory.
            let given = args.out.clone().unwrap_or_else(|| "comparison.html".into());
            let out = std::path::absolute(&given)?;
            results::write_atomically(&out, comparison.html()?.as_bytes())
                .map_err(|error| results::WriteError { path: out, error })?;
            format!("{}\n", given.display())
        }
    })
}
