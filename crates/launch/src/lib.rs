//! p2plab process launching: starting unmodified programs with their node's virtual
//! address, under the preload shim (`libp2plab_shim.so`) or, for `wrap`, cgroup BPF
//! programs (`sockbpf`), one by hand (`wrap`) or a whole experiment on schedule
//! (`schedule`), each node in its cgroup, measured and followed.

mod cpu;
pub mod elf;
mod isolated;
pub mod progress;
pub mod schedule;
pub mod signals;
pub mod spawn;
pub mod tail;
pub mod wrap;

pub use schedule::{
    prepare, prepare_commands, Network, Observer, Options, Outcome, Prepared, RunError, Start,
    StopReason,
};
pub use signals::Stop;
