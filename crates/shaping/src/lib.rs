//! p2plab shaping: turns the link model of a topology, and the nodes placed on this host,
//! into kernel objects ([`objects`]), brings networks up and down with exact teardown and
//! changes them while they run, all through the [`Network`] handle. Backends: netem (kernel
//! delay and loss) and nfqueue (delay and loss in the userspace delay engine, behind
//! NFQUEUE rules); both shape rates with HTB over IFBs.
//!
//! Modules, bottom up: `error` and `state` (the state file, its directory and lock),
//! `objects` (pure: the kernel objects of a network), `firewall`, `backend`, `engine` (the delay engine process), `routes`,
//! `packet_size`, `counters`, `updown` (up and down), `runtime` (run-time changes) and
//! `network` (the handle).

mod backend;
mod counters;
mod engine;
mod error;
mod firewall;
mod network;
pub mod objects;
mod packet_size;
mod routes;
mod runtime;
mod state;
mod updown;

pub use backend::{is_net_admin, probe, Shaping};
pub use counters::NodeCounters;
pub use engine::{engine_args, run as run_engine, EngineBinary};
pub use error::Error;
pub use firewall::QueueRules;
pub use netctl::probe::Backend;
pub use network::Network;
pub use routes::RemoteNodes;
pub use state::{netns_run_dir, run_dir, State};
pub use updown::{teardown_list, UpOptions};
