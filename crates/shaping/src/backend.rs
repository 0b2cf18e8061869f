//! What this host lets shaping do: the privilege it needs (CAP_NET_ADMIN) and the backend
//! it picks, from what the kernel can do (tried in a scratch namespace, never on the host).

use crate::error::Error;
use delayq::{Engine, EngineConfig, PairParams};
use netctl::probe::Backend;

const CAP_NET_ADMIN: u32 = 12;

/// Which backend `up` should use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shaping {
    /// netem where the kernel has it, else nfqueue.
    Auto,
    /// This one, or an error naming what is missing.
    Force(Backend),
}

/// Whether this process has CAP_NET_ADMIN.
pub fn is_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// What this kernel can do, tried in a scratch namespace, the NFQUEUE check including a
/// queue bound by the delay engine itself.
pub fn probe() -> netctl::probe::Capabilities {
    netctl::probe::probe(|| {
        let config = EngineConfig {
            queue_num: 7,
            rt_priority: None,
            ..EngineConfig::default()
        };
        Engine::new(config, |_, _| PairParams::default())
            .map(drop)
            .map_err(|e| e.to_string())
    })
}

/// The backend `up` uses for `shaping` on this kernel, or why there is none.
pub(crate) fn pick_backend(shaping: Shaping) -> Result<Backend, Error> {
    let caps = probe();
    match shaping {
        Shaping::Auto => caps.pick().map_err(|e| Error::Backend(Backend::Nfqueue, e)),
        Shaping::Force(b) => caps
            .supports(b)
            .map(|_| b)
            .map_err(|e| Error::Backend(b, e)),
    }
}
