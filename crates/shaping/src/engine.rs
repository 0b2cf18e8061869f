//! The nfqueue backend's delay and loss: runs the userspace engine (crate `delayq`) for
//! one network, with the network's link model as its per-pair lookup, until SIGTERM or
//! SIGINT (which `down` sends). On SIGHUP (sent by run-time changes) it re-reads the
//! network's state file and swaps in the new model; packets already held keep their due
//! times, and a pair's packets never overtake each other. `spawn` starts it as
//! `p2plab engine --name N`, the form `up` and `down` know it by.

use crate::lifecycle::{engine_log, State};
use delayq::{Engine, EngineConfig, PairParams};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// The model's per-pair lookup: (one-way delay in µs, loss) by (source, destination).
type Lookup = Box<dyn Fn(Ipv4Addr, Ipv4Addr) -> Option<(u64, f64)> + Send + Sync>;

/// Polling for the last 50 us before each due verdict while the engine sees under 20k
/// packets/s (delayq's default), sleeping only above: polling keeps wake-ups on time on a
/// busy virtual machine (the RTT tests need it), while at 100k packets/s it took the core
/// the sender needed (delayq's bench, three repetitions each: sleeping sustained 100k+).
const SPIN: Duration = Duration::from_micros(50);

/// What this kernel can do, tried in a scratch namespace, the NFQUEUE check including a
/// queue bound by the engine itself.
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

/// Runs the engine of `state` until SIGTERM or SIGINT; blocks.
pub fn run(state: &State) -> Result<(), String> {
    let rules = state
        .rules
        .as_ref()
        .ok_or_else(|| format!("network {} needs no delay engine", state.name))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let lookup: Arc<RwLock<Lookup>> = Arc::new(RwLock::new(Box::new(state.model.lookup())));
    reload_on_hangup(&state.name, Arc::clone(&lookup))?;
    let config = EngineConfig {
        queue_num: rules.queue,
        spin: SPIN,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(config, move |s, d| {
        let current = lookup.read().unwrap_or_else(PoisonError::into_inner);
        let (delay_us, loss) = current(s, d).unwrap_or((0, 0.0));
        PairParams { delay_us, loss }
    })
    .map_err(|e| e.to_string())?;
    engine.run(&stop).map_err(|e| e.to_string())
}

/// On each SIGHUP, reads network `name`'s state file again and swaps its model's lookup in
/// (built before the swap, so packets wait only for the swap itself).
fn reload_on_hangup(name: &str, lookup: Arc<RwLock<Lookup>>) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| e.to_string())?;
    let name = name.to_string();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            match crate::lifecycle::load(&name) {
                Ok(s) => {
                    let new: Lookup = Box::new(s.model.lookup());
                    *lookup.write().unwrap_or_else(PoisonError::into_inner) = new;
                }
                Err(e) => eprintln!("p2plab engine: cannot reload the link model: {e}"),
            }
        }
    });
    Ok(())
}

/// Starts `p2plab engine --name N` (this same executable), output to the engine log next
/// to the state file; returns its pid. `up` takes this as its engine starter.
pub fn spawn(state: &State) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the p2plab binary: {e}"))?;
    spawn_exe(&exe, state)
}

/// Starts `EXE engine --name N` like [`spawn`], from the p2plab binary `exe` (for callers
/// that are not p2plab, such as tests).
pub fn spawn_exe(exe: &Path, state: &State) -> Result<u32, String> {
    let log_path = engine_log(&state.name);
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let child = Command::new(exe)
        .args(["engine", "--name", &state.name])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the delay engine: {e}"))?;
    Ok(child.id())
}
