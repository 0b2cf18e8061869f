//! `p2plab run`: run an experiment on this host and write its results and report.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Run an experiment on this machine: network up, processes on schedule, results, teardown.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab run examples/quickstart.yaml\n  p2plab run examples/bittorrent/ci.yaml --shaping nfqueue\n\nNeeds root. Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) stops the run gracefully and keeps its\nresults; a second one kills its processes at once, and the network is still taken down. After a crash,\n`p2plab down NAME` ends the run's processes and removes its network."
)]
pub struct RunArgs {
    /// The experiment file (YAML).
    pub experiment: PathBuf,
    /// Shaping backend.
    #[arg(long, value_enum, default_value_t = crate::up::ShapingArg::Auto)]
    pub shaping: crate::up::ShapingArg,
    /// Device that carries the virtual addresses.
    #[arg(long, default_value = "lo")]
    pub dev: String,
    /// Where the result directory is made.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// The shim library [default: $P2PLAB_SHIM, else libp2plab_shim.so beside p2plab].
    #[arg(long, value_name = "PATH")]
    pub shim: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// A run ended by a stop signal: `p2plab` exits with 128 + the signal's number, as a shell
/// reports a process that signal ended.
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
    message: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

pub fn run(args: &RunArgs) -> Result<()> {
    let done = runner::run(&runner::RunArgs {
        experiment: args.experiment.clone(),
        shaping: args.shaping.choice(),
        dev: args.dev.clone(),
        results: args.results.clone(),
        shim: args.shim.clone(),
        quiet: args.quiet,
        share: None,
        results_dir: None,
        run_prepare: true,
        stop_rule_elsewhere: false,
    })
    .map_err(|e| match e {
        runner::Error::Interrupted(signal) => anyhow::Error::new(Interrupted {
            signal,
            message: e.to_string(),
        }),
        e => e.into(),
    })?;
    let report_line = done
        .report
        .as_ref()
        .map_or(String::new(), |r| format!("report:  {}\n", r.display()));
    crate::output::emit(&format!(
        "{}\nresults: {}\n{report_line}",
        done.summary.trim_end(),
        done.dir.display(),
    ))?;
    // Without its report page, the result directory.
    let see = done.report.as_ref().unwrap_or(&done.dir).display();
    let outcome = match done.stop {
        runner::StopReason::Aborted(why) => Err(anyhow::anyhow!("the run was aborted: {why}")),
        runner::StopReason::NetworkFailed(why) => Err(anyhow::anyhow!(
            "the run was stopped, its network failed: {why}; the results up to then are in {}",
            done.dir.display()
        )),
        runner::StopReason::Interrupted(signal) => Err(anyhow::Error::new(Interrupted {
            signal,
            message: format!(
                "the run was interrupted by {}; its results are in {}",
                launch::signals::name(signal),
                done.dir.display()
            ),
        })),
        _ if done.totals.failed > 0 => Err(anyhow::anyhow!(
            "{} of {} processes failed (did not start, exited with a non-zero code or were killed by a signal p2plab did not send); see {see}",
            done.totals.failed,
            done.totals.processes,
        )),
        _ => Ok(()),
    };
    if done.lost.is_empty() {
        return outcome;
    }
    // Lost results fail the run (exit status 1), unless a stop signal says more.
    let lost = anyhow::anyhow!(
        "the results in {} are incomplete: {}",
        done.dir.display(),
        done.lost
    );
    match outcome {
        Err(e) if e.is::<Interrupted>() => {
            eprintln!("{lost}");
            Err(e)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(lost)
        }
        Ok(()) => Err(lost),
    }
}
