//! `p2plab sweep`: the virtualization-ratio sweep. The same experiment run over fewer and
//! fewer hosts of an inventory (ratio = nodes per host), each ratio `--repeat` times, and
//! the completion times compared with the least-folded run's (`report::sweep`): the
//! machine's virtualization ratio is the largest whose results stay within the thresholds.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Find how many nodes one host can run before results drift (the virtualization ratio).
#[derive(Args)]
#[command(
    after_help = "Example:\n  p2plab sweep examples/quickstart.yaml --hosts cluster/hosts.example.yaml --ratios 5,10,20\n\nEach ratio R runs the experiment on the first ceil(nodes / R) hosts of the inventory; the\nruns and sweep.json, sweep.svg and sweep.txt go to results/<name>-sweep-<time>/."
)]
pub struct SweepArgs {
    /// The experiment file (YAML).
    pub experiment: PathBuf,
    /// The inventory of hosts (YAML).
    #[arg(long, value_name = "INVENTORY")]
    pub hosts: PathBuf,
    /// The ratios (nodes per host) to run, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub ratios: Vec<u32>,
    /// Runs per ratio.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Largest Kolmogorov-Smirnov distance to the least-folded run that still counts as the same.
    #[arg(long, default_value_t = 0.1)]
    pub max_ks: f64,
    /// Largest shift of the median completion time, in percent.
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub max_median_shift: f64,
    #[command(flatten)]
    pub cluster: crate::run::ClusterArgs,
    /// Shaping backend (every host uses the same one).
    #[arg(long, value_enum, default_value_t = crate::up::ShapingArg::Auto)]
    pub shaping: crate::up::ShapingArg,
    /// The shim library [default: $P2PLAB_SHIM, else libp2plab_shim.so beside p2plab].
    #[arg(long, value_name = "PATH")]
    pub shim: Option<PathBuf>,
    /// Where the sweep's directory is made.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

/// `5%` or `5` as the fraction 0.05.
fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage, e.g. 5%"))?;
    Ok(n / 100.0)
}

pub fn sweep(args: &SweepArgs) -> Result<()> {
    let exp =
        experiment::load(&args.experiment).map_err(|d| crate::exit::bad_input(d.to_string()))?;
    let nodes = exp.plan.link.nodes.len();
    let inventory =
        cluster::inventory::load(&args.hosts).map_err(|d| crate::exit::bad_input(d.to_string()))?;
    let mut ratios = args.ratios.clone();
    ratios.sort_unstable();
    ratios.dedup();
    for &r in &ratios {
        let need = nodes.div_ceil(r.max(1) as usize);
        if r == 0 || need > inventory.hosts.len() {
            return Err(crate::exit::bad_input(format!(
                "--ratios {r}: {nodes} nodes at {r} per host need {need} hosts, the inventory {} has {}",
                args.hosts.display(),
                inventory.hosts.len()
            )));
        }
    }
    let stamp = runner::result_dir(
        &args.results,
        &format!("{}-sweep", runner::network_name(&exp)),
    )?;
    let target = crate::run::Target {
        experiment: args.experiment.clone(),
        inventory: args.hosts.clone(),
        shaping: args.shaping,
        shim: args.shim.clone(),
        quiet: crate::output::quiet(),
    };
    let mut runs = Vec::new();
    for &r in &ratios {
        for i in 0..args.repeat {
            let parent = stamp.join(format!("ratio-{r}-{i}"));
            eprintln!("p2plab sweep: ratio {r} (run {} of {})", i + 1, args.repeat);
            let done = cluster::controller::run(&args.cluster.run_args(
                &target,
                parent,
                Some(nodes.div_ceil(r as usize)),
            ))?;
            if let Some(signal) = done.interrupted {
                return Err(anyhow::Error::new(crate::run::Interrupted::new(
                    signal,
                    format!(
                        "the sweep was interrupted by {} at ratio {r}; its runs so far are in {}",
                        launch::signals::name(signal),
                        stamp.display()
                    ),
                )));
            }
            runs.push(report::sweep::SweepRun {
                ratio: r,
                dir: done.dir,
            });
        }
    }
    let sweep = report::sweep::sweep(
        &runs,
        &report::sweep::Thresholds {
            max_ks: args.max_ks,
            max_median_shift: args.max_median_shift,
        },
    )?;
    report::sweep::write_sweep(&stamp, &sweep)?;
    crate::output::emit(&format!("{sweep}\nsweep: {}\n", stamp.display()))
}
