//! Userspace delay/loss engine of p2plab's `nfqueue` shaping backend (kernels without
//! `sch_netem`).
//!
//! A firewall rule sends the virtual prefixes' packets to an NFQUEUE queue; [`Engine`]
//! receives them (headers only), asks the caller's lookup for the (source, destination)
//! pair's one-way delay and loss, drops with that probability or holds the verdict on a
//! hashed timing wheel, and accepts each packet when due, never letting a packet overtake
//! an earlier one of its pair. [`QueueRule`] installs and removes such a rule.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc, RwLock};
//! use delayq::{Engine, EngineConfig, PairParams};
//!
//! let params = Arc::new(RwLock::new(PairParams { delay_us: 10_000, loss: 0.01 }));
//! let shared = Arc::clone(&params);
//! let mut engine = Engine::new(EngineConfig { queue_num: 3, ..Default::default() },
//!     move |_src, _dst| *shared.read().unwrap())?;
//! let stop = AtomicBool::new(false);
//! engine.run(&stop)?; // blocks; set `stop` from another thread
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod nfqueue;
mod oversleep;
mod rule;
mod sched;
mod wheel;
mod window;

pub use engine::{
    Counters, Engine, EngineConfig, Error, PairParams, LATENESS_BUCKETS, LATENESS_UNIT,
};
pub use rule::{QueueRule, RuleError};
