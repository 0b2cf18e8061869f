//! The scheduler: running an experiment on this host. Prepare commands and files
//! (`setup`, done by [`prepare`] before the run), then, from time 0 ([`Start`]: now, or a
//! given time waited for), start every node's process on schedule, carry out events
//! (signals here, network changes through the [`Network`] the caller gives), follow
//! metrics (`event_loop`), apply the stop rule and stop what is left, SIGTERM then the
//! cgroup kill (`stop`), and return one record per process and every metric sample
//! (`records`), each written to the result directory as it comes (a process's row when it
//! ends, samples as they are read, flushed every half second) and shown to the caller's
//! [`Observer`], with the host's CPU busy share sampled about once a second
//! ([`crate::cpu`]). Single-threaded: one loop wakes for the next start, event or poll.
//! Processes and time are reached through a `Host`, so that the loop can be driven without
//! real processes.
//!
//! In cluster mode a host runs a share of the nodes ([`Options::local`]: only their
//! processes start here, events aimed at other nodes do nothing here) and the caller
//! decides when the run ends ([`Options::stop_rule_elsewhere`], [`Stop::request`]).

mod event_loop;
mod host;
mod records;
mod setup;
mod stop;

pub use setup::prepare_commands;
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
use std::time::{Duration, SystemTime};

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

/// What a caller sees of a run as it goes (the cluster agent forwards it to its
/// controller). Called from the scheduler's thread.
pub trait Observer: Sync {
    /// The process of node `node` started as `pid`, `at_s` seconds after time 0.
    fn started(&self, node: usize, pid: u32, at_s: f64);
    /// A process ended (or failed to start, or still ran when the run ended): its row, as
    /// written to `processes.csv`.
    fn ended(&self, row: &Process);
    /// A metric sample was read, as written to `metrics.csv`.
    fn sample(&self, sample: &MetricSample);
}

/// When time 0 of the schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// As soon as the run is asked to begin.
    Now,
    /// At this time of the host's clock: the run waits for it (a stop signal or request
    /// cuts the wait short); a time already past begins at once, late, and each process's
    /// row shows the lag (`start_s` after `planned_s`).
    At(SystemTime),
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
    /// The nodes whose processes run on this host (indices into the plan's nodes); `None`:
    /// every node. The starts of other nodes, and process events aimed at them, are
    /// another host's; only these nodes get directories, logs and cgroups here.
    pub local: Option<&'a [usize]>,
    /// Whether the experiment's prepare commands run here (not when they ran once
    /// elsewhere and their files were put in the result directory before).
    pub run_prepare: bool,
    /// The experiment's stop rule is decided elsewhere (cluster mode: by the controller,
    /// over every host): processes exiting or a metric reached never end the run here;
    /// the duration cap, a stop signal, a network failure or [`Stop::request`] do.
    pub stop_rule_elsewhere: bool,
    pub start: Start,
    pub observer: Option<&'a dyn Observer>,
}

impl Options<'_> {
    /// Whether each of `nodes` nodes runs its processes on this host.
    fn here(&self, nodes: usize) -> Vec<bool> {
        let Some(local) = self.local else {
            return vec![true; nodes];
        };
        let mut here = vec![false; nodes];
        for &i in local.iter().filter(|&&i| i < nodes) {
            here[i] = true;
        }
        here
    }
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
    /// The caller asked for the stop ([`Stop::request`]), for this reason.
    Requested(String),
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
            StopReason::Requested(why) => f.write_str(why),
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
    /// Whether each node runs its processes on this host.
    here: Vec<bool>,
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

/// A run set up ([`prepare`]), not begun.
pub struct Prepared {
    groups: Vec<Option<cgroup::NodeGroup>>,
    out: Writer,
}

/// Sets `exp` up as `opts` say: `logs/`, the prepare commands (if `opts.run_prepare`),
/// each local node's cgroup, directory, empty logs and files, and the result tables.
pub fn prepare(exp: &Experiment, opts: &Options<'_>) -> Result<Prepared, RunError> {
    let groups = setup::prepare(exp, opts)?;
    let out = Writer::create(&opts.run_dir)?;
    Ok(Prepared { groups, out })
}

impl Prepared {
    /// Runs `exp`, set up with the same `opts`, to its stop rule. Interrupted by a stop
    /// signal (see [`signals`]) or request, it stops gracefully (hurried by a second one)
    /// and still returns every record.
    pub fn run(self, exp: &Experiment, opts: &Options<'_>, net: &mut dyn Network) -> Outcome {
        let host = System::new(&opts.shim, self.groups, opts.cgroups);
        Scheduler::new(exp, opts, host, self.out, net).run(net)
    }
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
        let here = opts.here(n);
        let local_starts = exp.starts.iter().filter(|s| here[s.node]).count();
        Scheduler {
            exp,
            opts,
            host,
            here,
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
            progress: Progress::new(local_starts, exp, opts.quiet),
            cpu: Sampler::default(),
        }
    }

    /// Waits for time 0, runs the schedule to its stop rule, stops what is left and returns
    /// the records.
    fn run(mut self, net: &mut dyn Network) -> Outcome {
        self.wait_for_start();
        self.sample_cpu();
        self.progress.update(self.host.now(), self.counts());
        let stop = self.schedule(net);
        self.stop_left();
        self.poll(net);
        self.sample_cpu();
        self.progress.update(self.host.now(), self.counts());
        self.progress.finish();
        self.outcome(stop)
    }
}
