//! A validated experiment: the planned topology, roles with their nodes and parsed
//! commands, the start schedule, timed events, the stop rule and the metrics to extract.
//! Everything a run needs is resolved here, so a run cannot fail on its inputs half-way.

use crate::raw::FailurePolicy;
use crate::template::{self, Arg, NodeField, RunDir, Values};
use regex::Regex;
use std::path::{Path, PathBuf};
use topology::{NetChange, Plan};

#[derive(Debug)]
pub struct Experiment {
    pub name: String,
    /// The experiment file.
    pub file: PathBuf,
    /// The topology file, or `None` when the topology is inline.
    pub topology_file: Option<PathBuf>,
    /// The scenario file, if the experiment names one.
    pub scenario_file: Option<PathBuf>,
    pub plan: Plan,
    pub seed: u64,
    pub roles: Vec<Role>,
    /// Commands run once, in the run directory, before any process starts.
    pub prepare: Vec<Vec<Arg>>,
    /// Every process start, in time order.
    pub starts: Vec<Start>,
    /// Every event, in time order (ties keep file order, YAML events before scenario ones).
    pub events: Vec<Event>,
    pub stop: StopRule,
    pub on_failure: FailurePolicy,
    /// Cluster mode: go on without a lost host's nodes, or stop the run (the default).
    pub on_host_failure: FailurePolicy,
}

#[derive(Debug)]
pub struct Role {
    pub name: String,
    /// Node indices into `plan.link.nodes`, in start order.
    pub nodes: Vec<usize>,
    /// The command as written, for display.
    pub command_line: String,
    pub command: Vec<Arg>,
    pub port: Option<u16>,
    pub env: Vec<(String, String)>,
    /// Files copied from the run directory into each node's directory before it starts.
    pub files: Vec<PathBuf>,
    pub metrics: Vec<Metric>,
    /// CPU limit in percent of one core.
    pub cpu_percent: Option<f64>,
    /// Memory limit in bytes.
    pub memory_bytes: Option<u64>,
}

/// A value read from a process's output: the regex's first capture group, as a number.
#[derive(Debug)]
pub struct Metric {
    pub name: String,
    pub regex: Regex,
}

/// One process start: role `role` on node `node`, `at_us` after the run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub at_us: u64,
    pub role: usize,
    pub node: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at_us: u64,
    pub action: Action,
}

/// What an event does: something to the processes of some nodes, which the run does
/// itself, or a change to the network, which shaping makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A process action on these node indices.
    Process(ProcessAction, Vec<usize>),
    Net(NetChange),
}

/// What an event does to the processes of its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessAction {
    /// Start the node's processes (again).
    Start,
    /// SIGTERM.
    Stop,
    /// SIGKILL.
    Kill,
    /// SIGSTOP.
    Pause,
    /// SIGCONT.
    Resume,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StopRule {
    /// Stop when every process of these roles has exited.
    pub exited: Vec<usize>,
    /// Stop at the latest this long after the start.
    pub after_us: u64,
    pub metric: Option<MetricStop>,
}

/// Stop when every process of `role` has reported metric `name` >= `at_least`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricStop {
    pub name: String,
    pub role: usize,
    pub at_least: f64,
}

struct NodeValues<'a> {
    experiment: &'a Experiment,
    role: usize,
    node: usize,
    run_dir: &'a Path,
}

impl Values for NodeValues<'_> {
    fn field(&self, role: Option<usize>, field: NodeField) -> String {
        let e = self.experiment;
        let (role, node) = match role {
            Some(r) => (r, e.roles[r].nodes[0]),
            None => (self.role, self.node),
        };
        let n = &e.plan.link.nodes[node];
        match field {
            NodeField::Ip => n.ip.to_string(),
            NodeField::Name => n.name.clone(),
            NodeField::Index => e.plan.link.index_in_group(node).to_string(),
            NodeField::Group => e.plan.link.groups[n.group].name.clone(),
            NodeField::Dir => e.node_dir(self.run_dir, node).display().to_string(),
            NodeField::Port => e.roles[role]
                .port
                .map(|p| p.to_string())
                .unwrap_or_default(),
        }
    }

    fn dir(&self, dir: RunDir) -> String {
        match dir {
            RunDir::Run => self.run_dir.display().to_string(),
            RunDir::Experiment => {
                // A bare file name has the empty path as its parent: the current directory.
                let dir = match self.experiment.file.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
                dir.display().to_string()
            }
        }
    }
}

impl Experiment {
    /// The working directory of `node` in a run.
    pub fn node_dir(&self, run_dir: &Path, node: usize) -> PathBuf {
        run_dir.join("nodes").join(&self.plan.link.nodes[node].name)
    }

    /// The command line of role `role` on node `node`.
    pub fn command(&self, role: usize, node: usize, run_dir: &Path) -> Vec<String> {
        let values = NodeValues {
            experiment: self,
            role,
            node,
            run_dir,
        };
        template::render(&self.roles[role].command, &values)
    }

    /// The `prepare` command lines (node fields refer to other roles only).
    pub fn prepare_commands(&self, run_dir: &Path) -> Vec<Vec<String>> {
        let values = NodeValues {
            experiment: self,
            role: 0,
            node: 0,
            run_dir,
        };
        self.prepare
            .iter()
            .map(|c| template::render(c, &values))
            .collect()
    }

    /// Roles that run on `node`.
    pub fn roles_of(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.roles.len()).filter(move |&r| self.roles[r].nodes.contains(&node))
    }
}

/// The short summary `p2plab check` prints for an experiment.
pub fn summary(e: &Experiment) -> String {
    use std::fmt::Write;
    let secs = |us: u64| us as f64 / 1e6;
    let mut out = format!("experiment `{}`, seed {}\n", e.name, e.seed);
    for (r, role) in e.roles.iter().enumerate() {
        let times: Vec<u64> = e
            .starts
            .iter()
            .filter(|s| s.role == r)
            .map(|s| s.at_us)
            .collect();
        let (first, last) = (
            times.first().copied().unwrap_or(0),
            times.last().copied().unwrap_or(0),
        );
        let _ = writeln!(
            out,
            "  role {:<12} {:>6} processes, starting {:.2}s .. {:.2}s: {}",
            role.name,
            role.nodes.len(),
            secs(first),
            secs(last),
            role.command_line
        );
    }
    let _ = writeln!(
        out,
        "  {} events; stop after {:.0}s at the latest",
        e.events.len(),
        secs(e.stop.after_us)
    );
    out
}
