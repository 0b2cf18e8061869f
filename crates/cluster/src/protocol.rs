//! What the controller and an agent say to each other: one JSON object per line, tagged by
//! `type`, over the agent's stdin (controller to agent, [`ToAgent`]) and stdout (agent to
//! controller, [`FromAgent`]). A run goes:
//!
//! ```text
//! controller                         agent
//! hello {version, host}        ──►
//!                              ◄──   hello {version, host, kernel, cpus, pid}
//! clock {seq} (several)        ──►
//!                              ◄──   clock {seq, unix_us}          (offset: lowest-RTT sample)
//! preflight {job}              ──►                                 (checks, changes nothing)
//!                              ◄──   preflight {backend, problems}
//! setup {job}                  ──►                                 (network, cgroups, directories)
//!                              ◄──   ready {processes, backend}    (the barrier)
//! start {at_unix_us}           ──►                                 (time 0, on the agent's clock)
//!                              ◄──   started / ended / sample ...  (as the run goes)
//! stop {reason}                ──►                                 (the stop rule, decided here)
//!                              ◄──   done {...}                    (torn down; then it exits)
//! ```
//!
//! Both sides send `heartbeat` every second; an agent that hears nothing from its
//! controller for [`SILENCE`] ends its processes, takes its network down, keeps its results
//! and exits, and a controller that hears nothing from an agent for as long counts its host
//! lost. Either side may send `failed {error}` (the agent: a step failed and it has undone
//! what it had set up) and then close. A line that does not parse ends the conversation:
//! both sides are the same `p2plab` build (the controller copies itself to every host), so
//! [`VERSION`] differing is a deployment error, said at `hello`.

use results::{HostCpu, MetricSample, Process};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::time::Duration;

/// The protocol's version; `hello` refuses another.
pub const VERSION: u32 = 1;

/// How often each side says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Silence after which the other side counts as gone.
pub const SILENCE: Duration = Duration::from_secs(10);

/// From the controller to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToAgent {
    /// Who the agent is in the inventory.
    Hello {
        version: u32,
        host: String,
    },
    /// A clock sample: answer with the time now.
    Clock {
        seq: u32,
    },
    /// Check that `job` can run here; change nothing.
    Preflight {
        job: Job,
    },
    /// Set `job` up (network, cgroups, result directory) and answer `ready`.
    Setup {
        job: Job,
    },
    /// Run the schedule with time 0 at this instant of the agent's clock (Unix µs).
    Start {
        at_unix_us: i64,
    },
    /// End the run now (gracefully): the stop rule was met, the controller was stopped or
    /// another host failed.
    Stop {
        reason: String,
    },
    Heartbeat,
}

/// This host's share of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The experiment file, on this host.
    pub experiment: String,
    /// Where this host's results go (the files roles use are already there).
    pub results_dir: String,
    /// Indices of the nodes this host runs (into the topology's nodes).
    pub local: Vec<usize>,
    /// The nodes of every other host, and the address to route them through.
    pub routes: Vec<Route>,
    /// The interface the virtual addresses go on.
    pub dev: String,
    /// `auto`, `netem` or `nfqueue`.
    pub shaping: String,
    /// The preload shim, on this host.
    pub shim: String,
    /// Every file copied for the job (path relative to the job's run directory, the parent
    /// of `results_dir`) with its SHA-256 in hex, checked in preflight.
    pub files: Vec<(String, String)>,
}

/// The nodes of another host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// That host's name.
    pub host: String,
    pub nodes: Vec<usize>,
    pub via: Ipv4Addr,
}

/// From an agent to the controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromAgent {
    Hello {
        version: u32,
        host: String,
        /// `uname -r`.
        kernel: String,
        cpus: u32,
        pid: u32,
    },
    Clock {
        seq: u32,
        unix_us: i64,
    },
    /// What would stop `job` here (empty: nothing), and the backend it would use.
    Preflight {
        backend: Option<String>,
        problems: Vec<String>,
    },
    /// Set up, waiting for `start`.
    Ready {
        processes: usize,
        backend: String,
    },
    Started {
        node: usize,
        pid: u32,
        at_s: f64,
    },
    /// A process ended: its `processes.csv` row.
    Ended {
        row: Box<Process>,
    },
    Sample {
        sample: MetricSample,
    },
    /// The run ended here and everything is torn down.
    Done {
        stop: String,
        duration_s: f64,
        host_cpu: Option<HostCpu>,
        /// What the agent's result directory lost, in words (empty: nothing).
        lost: String,
    },
    /// A step failed; what the agent had set up is undone.
    Failed {
        error: String,
    },
    Heartbeat,
}

/// One message as its line (no newline).
pub fn line<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).expect("messages serialize")
}

/// The message of one line, or why it is not one.
pub fn parse<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line).map_err(|e| {
        let shown: String = line.chars().take(120).collect();
        format!("not a protocol message ({e}): `{shown}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_tagged_by_type_and_read_back() {
        let job = Job {
            experiment: "/var/tmp/p2plab/runs/x/h1/input/exp.yaml".into(),
            results_dir: "/var/tmp/p2plab/runs/x/h1/results".into(),
            local: vec![0, 2],
            routes: vec![Route {
                host: "h2".into(),
                nodes: vec![1, 3],
                via: Ipv4Addr::new(172, 31, 240, 12),
            }],
            dev: "eth0".into(),
            shaping: "auto".into(),
            shim: "/var/tmp/p2plab/bin/0123/libp2plab_shim.so".into(),
            files: vec![("results/data.bin".into(), "e3b0".into())],
        };
        for m in [
            ToAgent::Hello {
                version: VERSION,
                host: "h1".into(),
            },
            ToAgent::Setup { job },
            ToAgent::Start { at_unix_us: 17 },
            ToAgent::Heartbeat,
        ] {
            let l = line(&m);
            assert!(!l.contains('\n'), "{l}");
            assert_eq!(parse::<ToAgent>(&l).unwrap(), m);
        }
        assert_eq!(line(&ToAgent::Heartbeat), r#"{"type":"heartbeat"}"#);
        let l = line(&FromAgent::Clock { seq: 3, unix_us: 5 });
        assert_eq!(l, r#"{"type":"clock","seq":3,"unix_us":5}"#);
    }

    #[test]
    fn a_line_that_is_no_message_says_what_it_was() {
        let e = parse::<FromAgent>("Welcome to node-1!").unwrap_err();
        assert!(e.contains("`Welcome to node-1!`"), "{e}");
    }
}
