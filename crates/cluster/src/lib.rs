//! Cluster mode: one experiment over many machines. The controller reads an inventory
//! (`inventory`), places the topology's nodes on its hosts (`placement`), opens one SSH
//! session per host (`ssh`), copies `p2plab` and the shim there and starts one agent per
//! host on one exec channel; controller and agents speak line-delimited JSON
//! (`protocol`) over a [`link::Link`], whatever carries it (SSH, or a local process's
//! pipes for tests and the orchestration benchmark).

pub mod agent;
pub mod checksum;
pub mod controller;
pub mod inventory;
pub mod link;
pub mod placement;
pub mod protocol;
pub mod ssh;
