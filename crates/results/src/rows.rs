//! The records of a result directory: `run.json`'s [`RunInfo`], a `processes.csv` row
//! ([`Process`]), a `metrics.csv` row ([`MetricSample`]), and the columns of both files.

use serde::{Deserialize, Serialize};
use std::fmt;

/// `run.json`: what was run, where and how.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RunInfo {
    pub name: String,
    pub started_unix: f64,
    pub duration_s: f64,
    pub topology: String,
    pub backend: Backend,
    pub kernel: String,
    pub p2plab_version: String,
    pub seed: u64,
    /// Why the run ended, in words (empty in results written before it was recorded).
    #[serde(default)]
    pub stopped: String,
    pub experiment: serde_json::Value,
    /// The command line of the run, `p2plab` first (empty in older results).
    #[serde(default)]
    pub command_line: Vec<String>,
    /// The topology as the run planned it: profiles, groups with their addresses, and the
    /// group-to-group delays and losses (`null` in older results).
    #[serde(default)]
    pub resolved_topology: serde_json::Value,
    /// How busy the host's CPUs were during the run (absent in older results, and when
    /// `/proc/stat` cannot be read).
    #[serde(default)]
    pub host_cpu: Option<HostCpu>,
    /// The hosts of a run over several machines, in the inventory's order (empty, and
    /// absent from `run.json`, on one host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostRun>,
}

/// One host of a run over several machines: where it is, what it ran and how it went.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HostRun {
    /// The host's name in the inventory (`processes.csv`'s `host` column names it).
    pub name: String,
    /// The address the controller reached it at.
    pub address: String,
    /// The nodes placed on it: its folding ratio.
    pub nodes: usize,
    /// The shaping backend it used.
    pub backend: Backend,
    /// Its kernel release.
    pub kernel: String,
    /// The host's clock minus the controller's, in milliseconds, as measured before the
    /// run (the schedule corrects for it).
    pub clock_offset_ms: f64,
    /// How busy its CPUs were during the run, when measured.
    #[serde(default)]
    pub host_cpu: Option<HostCpu>,
    /// Why the host was lost during the run, if it was.
    #[serde(default)]
    pub failure: Option<String>,
}

/// How busy the whole host (every CPU, every process, p2plab's and others') was during a
/// run: the share of CPU time not idle (`/proc/stat`: user, nice, system, irq, softirq and
/// steal over those plus idle and iowait).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HostCpu {
    /// CPUs the host has.
    pub cpus: u32,
    /// Busy share over the whole run, `0..=1`.
    pub mean_busy: f64,
    /// The largest busy share of one sample.
    pub max_busy: f64,
    /// `[time_s, busy]`: the busy share over the interval that ends `time_s` after the
    /// run started, about one per second and one at the end.
    pub samples: Vec<(f64, f64)>,
}

/// The shaping backend a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Netem,
    Nfqueue,
    None,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Netem => "netem",
            Backend::Nfqueue => "nfqueue",
            Backend::None => "none",
        })
    }
}

/// How a process ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exited by itself, with an exit code.
    Exited,
    /// Ended by a signal p2plab sent: a stop rule ending the run, a `stop` or `kill` event,
    /// a stop signal to the run.
    Stopped,
    /// Ended by a signal p2plab did not send (a crash: SIGSEGV, SIGABRT; the OOM killer;
    /// someone's `kill`): a failure.
    Killed,
    FailedToStart,
    Running,
}

/// One row of `processes.csv` (fields in column order).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Process {
    pub node: String,
    pub role: String,
    pub group: String,
    pub ip: String,
    pub pid: Option<u32>,
    /// When the schedule (a role's `start` or a `start` event) said the process should
    /// start; empty in older results.
    #[serde(default)]
    pub planned_s: Option<f64>,
    pub start_s: f64,
    pub end_s: Option<f64>,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_user_s: Option<f64>,
    pub cpu_sys_s: Option<f64>,
    pub peak_rss_kb: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    /// The name of the host the process ran on, in a run over several machines; empty on
    /// one host, and in older results.
    #[serde(default)]
    pub host: Option<String>,
}

impl Process {
    /// `end_s - start_s` when the process exited with code 0, else `None`.
    pub fn completion_s(&self) -> Option<f64> {
        match (self.status, self.exit_code, self.end_s) {
            (Status::Exited, Some(0), Some(end)) => Some(end - self.start_s),
            _ => None,
        }
    }

    /// How late the process started: `start_s - planned_s`, when the plan is known.
    pub fn start_lag_s(&self) -> Option<f64> {
        Some(self.start_s - self.planned_s?)
    }

    /// Failed to start, or exited with a non-zero code.
    pub fn failed(&self) -> bool {
        match self.status {
            Status::FailedToStart | Status::Killed => true,
            Status::Exited => self.exit_code != Some(0),
            Status::Stopped | Status::Running => false,
        }
    }

    /// User plus system CPU seconds, when both were measured.
    pub fn cpu_s(&self) -> Option<f64> {
        Some(self.cpu_user_s? + self.cpu_sys_s?)
    }
}

/// One row of `metrics.csv` (fields in column order).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MetricSample {
    pub time_s: f64,
    pub node: String,
    pub role: String,
    pub name: String,
    pub value: f64,
}

/// The columns of `processes.csv`, in the order they are written.
pub(crate) const PROCESS_COLUMNS: &[&str] = &[
    "node",
    "role",
    "group",
    "ip",
    "pid",
    "planned_s",
    "start_s",
    "end_s",
    "status",
    "exit_code",
    "signal",
    "cpu_user_s",
    "cpu_sys_s",
    "peak_rss_kb",
    "bytes_sent",
    "bytes_received",
    "host",
];
/// The columns of `processes.csv` that older results lack: reading does without them.
pub(crate) const LATER_PROCESS_COLUMNS: &[&str] = &["planned_s", "host"];
/// The columns of `metrics.csv`, in the order they are written.
pub(crate) const METRIC_COLUMNS: &[&str] = &["time_s", "node", "role", "name", "value"];
