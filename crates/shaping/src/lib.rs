//! p2plab shaping: turns the link model of a topology, and the nodes placed on this host,
//! into kernel objects ([`plan`]), brings networks up and down with exact teardown
//! ([`lifecycle`]) and changes them while they run ([`runtime`]). Backends: netem (kernel
//! delay and loss) and nfqueue (delay and loss in the userspace engine, behind
//! [`firewall`] rules); both shape rates with HTB over IFBs.

pub mod engine;
pub mod firewall;
pub mod lifecycle;
pub mod plan;
pub mod runtime;

pub use lifecycle::{down, up, Error, Shaping, State, UpOptions};
pub use netctl::probe::Backend;
