//! The nfqueue backend's delay and loss: runs the userspace engine (crate `delayq`) for
//! one network, with the network's link model as its per-pair lookup, until SIGTERM or
//! SIGINT (which `down` sends). On SIGHUP (sent by run-time changes) it re-reads the
//! network's state file and swaps in the new model; packets already held keep their due
//! times, and a pair's packets never overtake each other. `spawn` starts it as
//! `p2plab engine --name N`, the form `up` and `down` know it by.

use crate::lifecycle::{engine_log, State};
use delayq::{Engine, EngineConfig, PairParams};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
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

/// Runs the engine of network `name` until SIGTERM or SIGINT; blocks. The SIGHUP handler
/// is in place before the state file is read, and [`spawn_exe`] starts the engine with
/// SIGHUP blocked, so a change saved at any moment of the start is never missed (nor does
/// its SIGHUP end the engine): its signal waits until the handler can take it.
pub fn run(name: &str) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| e.to_string())?;
    let state = crate::lifecycle::load(name).map_err(|e| e.to_string())?;
    let rules = state
        .rules
        .as_ref()
        .ok_or_else(|| format!("network {} needs no delay engine", state.name))?;
    let lookup: Arc<RwLock<Lookup>> = Arc::new(RwLock::new(Box::new(state.model.lookup())));
    reload_on_hangup(hangups, name, Arc::clone(&lookup));
    hangup_mask(SigmaskHow::SIG_UNBLOCK).map_err(|e| format!("unblock SIGHUP: {e}"))?;
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

/// Blocks or unblocks SIGHUP for the calling thread (async-signal-safe: `pthread_sigmask`).
fn hangup_mask(how: SigmaskHow) -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGHUP);
    pthread_sigmask(how, Some(&set), None)
}

/// On each SIGHUP, reads network `name`'s state file again and swaps its model's lookup in
/// (built before the swap, so packets wait only for the swap itself).
fn reload_on_hangup(
    mut hangups: signal_hook::iterator::Signals,
    name: &str,
    lookup: Arc<RwLock<Lookup>>,
) {
    let name = name.to_string();
    std::thread::spawn(move || {
        for _ in hangups.forever() {
            match crate::lifecycle::load(&name) {
                Ok(s) => {
                    let new: Lookup = Box::new(s.model.lookup());
                    *lookup.write().unwrap_or_else(PoisonError::into_inner) = new;
                }
                Err(e) => eprintln!("p2plab engine: cannot reload the link model: {e}"),
            }
        }
    });
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
    let mut command = Command::new(exe);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // pthread_sigmask, which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| hangup_mask(SigmaskHow::SIG_BLOCK).map_err(std::io::Error::from));
    }
    let child = command
        .args(["engine", "--name", &state.name])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the delay engine: {e}"))?;
    Ok(child.id())
}
