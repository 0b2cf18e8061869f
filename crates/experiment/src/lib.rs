//! p2plab experiment files: which commands run on which virtual nodes, when, what happens
//! to them during the run, when the run stops and which numbers to read from their output.
//!
//! ```yaml
//! name: swarm                               # network, cgroups, results/<name>-<time>/ (default: file stem)
//! topology: ../topologies/quickstart.yaml   # or the topology inline
//! seed: 7                                    # start jitter and random order (default 1)
//! roles:
//!   - name: server
//!     nodes: east-1                          # `*`, a group, a node, `group[A-B]`, or a list
//!     port: 8000
//!     command: python3 -m http.server {port} --bind {ip}
//!   - name: client
//!     nodes: west
//!     command: curl -s -o {dir}/page http://{server.ip}:{server.port}/
//!     start: {at: 2s, every: 250ms, jitter: 50ms, order: random}
//!     metrics: [{name: progress, regex: '\((\d+)%\)'}]
//!     cpu: 50%                               # optional limits per process tree
//!     memory: 256M
//! prepare: ["sh -c 'head -c 1M /dev/urandom > {run_dir}/file'"]   # once, before starting
//! stop: {exited: [client], after: 5m}        # or metric: {name, role, at_least}
//! events:
//!   - {at: 30s, nodes: "west[1-3]", action: pause}
//!   - {at: 40s, action: set_delay, from: east, to: west, delay: 80ms}
//! scenario: churn.txt                        # ProtoPeer-style `<nodes> <time> <action>` lines
//! ```
//! Commands are split like a shell would but run without one. Placeholders: `{ip}`,
//! `{name}`, `{index}`, `{group}`, `{dir}`, `{port}`, `{ROLE.FIELD}`, `{run_dir}`.
//! Actions: start, stop (SIGTERM), kill, pause (SIGSTOP), resume, cut, restore,
//! set_link (up, down, latency, loss) and set_delay (from, to, delay, loss).

mod actions;
mod model;
mod raw;
mod scenario;
mod selector;
mod template;
mod validate;

pub use model::{
    summary, Action, Event, Experiment, Metric, MetricStop, ProcessAction, Role, Start, StopRule,
};
pub use raw::{FailurePolicy, Order};
pub use topology::{LinkChange, NetChange};
pub use validate::{resolve_program, Reachable, DEFAULT_SEED};

use std::path::Path;
use topology::Diagnostics;

/// Reads and validates the experiment file at `path` (and the topology and scenario files
/// it names); each role's program must be installed.
pub fn load(path: &Path) -> Result<Experiment, Diagnostics> {
    load_runnable(path, &|_| Ok(()))
}

/// `load`, and each role's program must also be `reachable`: what `p2plab run` and
/// `p2plab check` refuse before anything is set up.
pub fn load_runnable(path: &Path, reachable: Reachable<'_>) -> Result<Experiment, Diagnostics> {
    validate::build(path, &topology::check::read(path, "experiment")?, reachable)
}
