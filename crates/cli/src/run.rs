//! `p2plab run`: run an experiment on this host and write its results and report.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Run an experiment on this machine: network up, processes on schedule, results, teardown.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  p2plab run examples/quickstart.yaml\n  p2plab run examples/bittorrent/ci.yaml --shaping nfqueue\n\nNeeds root. Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) stops the run gracefully and keeps its\nresults; a second one kills its processes at once, and the network is still taken down. After a crash,\n`p2plab down --name NAME` ends the run's processes and removes its network."
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
    /// Run over the hosts of this inventory (YAML) instead of this machine alone.
    #[arg(long, value_name = "INVENTORY")]
    pub hosts: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The options of a run over several hosts.
#[derive(Args)]
pub struct ClusterArgs {
    /// Accept and record the host key of a host not yet in known_hosts (a changed key is
    /// still refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// The largest clock offset a host may have from this machine.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub max_clock_offset: std::time::Duration,
}

impl ClusterArgs {
    /// The controller's arguments for `experiment` over `inventory`'s first `hosts` hosts
    /// (all of them: `None`), with results under `results`.
    pub fn run_args(
        &self,
        target: &Target,
        results: PathBuf,
        hosts: Option<usize>,
    ) -> cluster::controller::RunArgs {
        cluster::controller::RunArgs {
            experiment: target.experiment.clone(),
            inventory: target.inventory.clone(),
            shaping: target.shaping.name().to_string(),
            results,
            shim: target.shim.clone(),
            quiet: target.quiet,
            accept_new_host_keys: self.accept_new_host_keys,
            max_clock_offset: self.max_clock_offset,
            hosts,
        }
    }
}

/// What a cluster run runs, where, and how it shows it.
pub struct Target {
    pub experiment: PathBuf,
    pub inventory: PathBuf,
    pub shaping: crate::up::ShapingArg,
    pub shim: Option<PathBuf>,
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

impl Interrupted {
    pub fn new(signal: i32, message: String) -> Interrupted {
        Interrupted { signal, message }
    }
}

pub fn run(args: &RunArgs) -> Result<()> {
    if let Some(inventory) = &args.hosts {
        let target = Target {
            experiment: args.experiment.clone(),
            inventory: inventory.clone(),
            shaping: args.shaping,
            shim: args.shim.clone(),
            quiet: crate::output::quiet(),
        };
        return run_cluster(&args.cluster.run_args(&target, args.results.clone(), None));
    }
    let done = runner::run(&runner::RunArgs {
        experiment: args.experiment.clone(),
        shaping: args.shaping.choice(),
        dev: args.dev.clone(),
        results: args.results.clone(),
        shim: args.shim.clone(),
        quiet: crate::output::quiet(),
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

/// A run over several hosts: like one host's, with the failed hosts named.
fn run_cluster(args: &cluster::controller::RunArgs) -> Result<()> {
    let done = cluster::controller::run(args).map_err(|e| match e {
        cluster::controller::Error::Interrupted(signal) => anyhow::Error::new(Interrupted {
            signal,
            message: e.to_string(),
        }),
        cluster::controller::Error::Input(d) => crate::exit::bad_input(d.to_string()),
        e => e.into(),
    })?;
    let t = &done.timings;
    let deployed = t.deploy.iter().flatten().count();
    let copied = t.deploy.iter().flatten().filter(|(_, c)| *c).count();
    let report_line = done
        .report
        .as_ref()
        .map_or(String::new(), |r| format!("report:  {}\n", r.display()));
    crate::output::emit(&format!(
        "{}\nhosts:   {deployed} deployed in {:.1} s ({copied} needed the binaries copied), preflight done at {:.1} s, all ready at {:.1} s, time 0 at {:.1} s\nresults: {}\n{report_line}",
        done.summary.trim_end(),
        t.deployed_s,
        t.preflight_s,
        t.ready_s,
        t.start_s,
        done.dir.display(),
    ))?;
    let see = done.report.as_ref().unwrap_or(&done.dir).display();
    if let Some(signal) = done.interrupted {
        return Err(anyhow::Error::new(Interrupted {
            signal,
            message: format!(
                "the run was interrupted by {}; its results are in {}",
                launch::signals::name(signal),
                done.dir.display()
            ),
        }));
    }
    if !done.failed_hosts.is_empty() {
        return Err(anyhow::anyhow!(
            "{} host(s) failed: {}; see {see}",
            done.failed_hosts.len(),
            done.failed_hosts.join("; ")
        ));
    }
    if done.totals.failed > 0 {
        return Err(anyhow::anyhow!(
            "{} of {} processes failed (did not start, exited with a non-zero code or were killed by a signal p2plab did not send); see {see}",
            done.totals.failed,
            done.totals.processes,
        ));
    }
    Ok(())
}
