//! The scheduler: running an experiment on this host. Prepare commands and files
//! (`setup`), then start every node's process on schedule, carry out events (signals
//! here, network changes through the [`Network`] the caller gives), follow metrics
//! (`event_loop`), apply the stop rule and stop what is left, SIGTERM then the cgroup
//! kill (`stop`), and return one record per process and every metric sample
//! (`records`), each written to the result directory as it comes (a process's row when it
//! ends, samples as they are read, flushed every half second), with the host's CPU busy
//! share sampled about once a second ([`crate::cpu`]). Single-threaded: one loop wakes for
//! the next start, event or poll. Processes and time are reached through a `Host`, so that
//! the loop can be driven without real processes.

mod event_loop;
mod host;
mod records;
mod setup;
mod stop;
#[cfg(test)]
mod tests;

use crate::cpu::Sampler;
use crate::progress::Progress;
use crate::signals::{self, Stop};
use crate::tail::Tail;
use cgroup::RunGroup;
use experiment::{Experiment, NetChange};
use host::{Host, System};
use records::Proc;
use results::{HostCpu, Loss, MetricSample, Process, Writer};
use std::path::PathBuf;
use std::time::Duration;

/// Longest sleep of the event loop, and of the wait for the last processes to end.
const TICK: Duration = Duration::from_millis(20);
/// How often the host's CPU counters are read.
const CPU_SAMPLE: Duration = Duration::from_secs(1);

/// The network side of a run: shaping changes at run time and traffic counters.
pub trait Network {
    /// Makes a run-time change (`cut`, `restore`, `set_link` or `set_delay`).
    fn apply(&mut self, change: &NetChange) -> Result<(), String>;
    /// Bytes sent and received by every node of the plan so far, if measured.
    fn bytes(&mut self) -> Option<Vec<(u64, u64)>>;
    /// Why the network no longer emulates the topology (its delay engine exited), if so.
    fn failure(&mut self) -> Option<String>;
}

/// How to run.
pub struct Options<'a> {
    /// The result directory; `logs/` and `nodes/` are made in it.
    pub run_dir: PathBuf,
    pub shim: PathBuf,
    /// The run's cgroups, when this host has them (created by the caller, which records
    /// them so that `p2plab down` can end the run's processes after a crash).
    pub cgroups: Option<&'a RunGroup>,
    pub quiet: bool,
    /// The stop signals, installed by the caller before it set anything up.
    pub stop: &'a Stop,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Every process of the stop rule's roles exited.
    RolesExited,
    /// Every process exited (no stop rule named roles or a metric).
    AllExited,
    MetricReached,
    DurationCap,
    /// A stop signal (its number) arrived.
    Interrupted(i32),
    /// A process failed to start under `on_failure: abort`.
    Aborted(String),
    /// The emulated network failed: what followed would not have been measured on it.
    NetworkFailed(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::RolesExited => f.write_str("the stop rule's roles exited"),
            StopReason::AllExited => f.write_str("every process exited"),
            StopReason::MetricReached => f.write_str("the stop metric was reached"),
            StopReason::DurationCap => f.write_str("the duration cap was reached"),
            StopReason::Interrupted(sig) => write!(f, "interrupted by {}", signals::name(*sig)),
            StopReason::Aborted(why) => write!(f, "aborted: {why}"),
            StopReason::NetworkFailed(why) => write!(f, "the network failed: {why}"),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// In the order they were written to `processes.csv`: as the processes ended.
    pub processes: Vec<Process>,
    pub metrics: Vec<MetricSample>,
    /// What `processes.csv` and `metrics.csv` lost (a full disk, an I/O error).
    pub lost: Vec<Loss>,
    pub duration_s: f64,
    pub stop: StopReason,
    /// How busy the host was, when `/proc/stat` could be read.
    pub host_cpu: Option<HostCpu>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot set up {path}: {error}")]
    Setup {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("prepare command `{command}` failed ({status}); its output is in {log}")]
    Prepare {
        command: String,
        status: String,
        log: PathBuf,
    },
    #[error("role `{role}`: {error}")]
    Cgroup { role: String, error: std::io::Error },
    #[error(transparent)]
    Results(#[from] results::WriteError),
}

/// A run under way: the experiment, where its processes run, and what they did so far.
struct Scheduler<'a, H: Host> {
    exp: &'a Experiment,
    opts: &'a Options<'a>,
    host: H,
    procs: Vec<Proc>,
    /// Index in `procs` of each node's running process.
    running: Vec<Option<usize>>,
    /// Whether a process was ever started on each node.
    started: Vec<bool>,
    /// How many processes of each role run.
    running_by_role: Vec<usize>,
    /// Latest value of the stop rule's metric for each node (NEG_INFINITY before any).
    stop_metric: Vec<f64>,
    bytes: Vec<(u64, u64)>,
    tail: Tail,
    /// The rows written so far, and where they go.
    rows: Vec<Process>,
    metrics: Vec<MetricSample>,
    out: Writer,
    progress: Progress,
    cpu: Sampler,
}

/// Runs `exp` to its stop rule. Interrupted by a stop signal (see [`signals`]), it stops
/// gracefully (hurried by a second one) and still returns every record.
pub fn run(
    exp: &Experiment,
    opts: &Options<'_>,
    net: &mut dyn Network,
) -> Result<Outcome, RunError> {
    let groups = setup::prepare(exp, opts)?;
    let out = Writer::create(&opts.run_dir)?;
    let host = System::new(&opts.shim, groups, opts.cgroups);
    Ok(Scheduler::new(exp, opts, host, out, net).run(net))
}

impl<'a, H: Host> Scheduler<'a, H> {
    fn new(
        exp: &'a Experiment,
        opts: &'a Options<'a>,
        host: H,
        out: Writer,
        net: &mut dyn Network,
    ) -> Self {
        let n = exp.plan.link.nodes.len();
        let mut cpu = Sampler::default();
        if let Some(ticks) = host.cpu_ticks() {
            cpu.add(host.now(), ticks);
        }
        Scheduler {
            exp,
            opts,
            host,
            procs: Vec::with_capacity(exp.starts.len()),
            running: vec![None; n],
            started: vec![false; n],
            running_by_role: vec![0; exp.roles.len()],
            stop_metric: vec![f64::NEG_INFINITY; n],
            bytes: net.bytes().unwrap_or_default(),
            tail: Tail::default(),
            rows: Vec::with_capacity(exp.starts.len()),
            metrics: Vec::new(),
            out,
            progress: Progress::new(exp.starts.len(), opts.quiet),
            cpu,
        }
    }

    /// Runs the schedule to its stop rule, stops what is left and returns the records.
    fn run(mut self, net: &mut dyn Network) -> Outcome {
        let stop = self.schedule(net);
        self.stop_left();
        self.poll(net);
        self.sample_cpu();
        self.progress.finish();
        self.outcome(stop)
    }
}
