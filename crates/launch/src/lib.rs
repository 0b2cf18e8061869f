//! p2plab process launching: starting unmodified programs under the preload shim
//! (`libp2plab_shim.so`) with their node's virtual address, one by hand (`wrap`) or a whole
//! experiment on schedule (`engine`), each node in its cgroup, measured and followed.

pub mod elf;
pub mod engine;
mod progress;
pub mod signals;
pub mod spawn;
pub mod tail;
pub mod wrap;

pub use engine::{run, Network, Options, Outcome, RunError, StopReason};
pub use signals::Stop;
