//! The p2plab topology model: link profiles, groups of virtual nodes, group-to-group delays
//! and the address plan, read from YAML and checked before anything touches a machine.
//!
//! # The link model
//! Every virtual node `v` has a group `g(v)`, an upload rate `U(v)` (`profiles.*.up`), a
//! download rate `D(v)` (`down`), a one-way access latency `L(v)` (`latency`), a loss
//! probability `p(v)` (`loss`) and a queue limit (`queue`, packets). Every ordered group pair
//! `(a,b)` has a one-way delay `G(a,b)` and a loss `q(a,b)` (`delays`, `delay_matrix`,
//! `defaults.delay`, `defaults.loss`; symmetric when only one direction is given; a group's
//! own pair `(a,a)` is 0 unless given). A packet from `s` to `d` leaves through `s`'s upload
//! queue at `U(s)`, enters through `d`'s download queue at `D(d)`, is delayed by
//! `L(s) + G(g(s),g(d)) + L(d)` and is lost with probability
//! `1 - (1-p(s))(1-q(g(s),g(d)))(1-p(d))`.
//!
//! # Units
//! Rates in bits per second as `tc` writes them (`kbit`, `mbit`, `gbit`; `kbps`, `mbps`,
//! `gbps` mean the same bits per second), times in `us`, `ms`, `s`, loss in `%`.
//!
//! # Addresses
//! Each group holds one contiguous block (`prefix`, or allocated in declaration order from
//! `address_plan.base`, default `10.0.0.0/8`); node `k` (1-based) of the group is named
//! `<group>-<k>` (or takes the k-th explicit name) and gets the block's network address + `k`.
//!
//! The modules `check`, `diag`, `spans` and `units` are public so that other p2plab input files
//! (experiments) report their errors and parse their units the same way; `select` (node
//! selectors) and `change` (run-time changes and their one parser) so that experiment
//! events, scenario lines and `p2plab change` name nodes and changes the same way.

mod address;
pub mod change;
pub mod check;
pub mod diag;
mod export;
mod link;
mod matrix;
mod plan;
mod raw;
pub mod select;
pub mod spans;
pub mod units;
mod validate;

pub use change::{LinkChange, NetChange};
pub use diag::{Diagnostic, Diagnostics};
pub use export::{plan_json, plan_table, resolved_json, summary};
pub use link::{Group, LinkModel, Node};
pub use plan::{Plan, Profile};
pub use units::{format_rate, format_time_us};
pub use validate::{DEFAULT_BASE, DEFAULT_QUEUE_PACKETS, MAX_GROUPS, MAX_NODES};

use std::path::Path;

/// Reads, validates and plans the topology file at `path`.
pub fn load(path: &Path) -> Result<Plan, Diagnostics> {
    parse(path, &check::read(path, "topology")?)
}

/// Validates and plans a topology given as text; `path` names it in messages and anchors
/// relative matrix file paths.
pub fn parse(path: &Path, source: &str) -> Result<Plan, Diagnostics> {
    validate::build(path, source)
}
