//! The delay engine of the nfqueue backend, its whole contract in one place: the process
//! is this same p2plab binary run as `p2plab engine --name N` (a hidden subcommand whose
//! handler calls [`run`]), started by [`EngineBinary::spawn`] with its output in the
//! engine log next to the state file, recognised by that command line in
//! `/proc/PID/cmdline` (pids get reused), checked for health, told to re-read its model
//! (SIGHUP) and stopped (SIGTERM, then SIGKILL).
//!
//! [`run`] is the engine itself: the userspace delay engine (crate `delayq`) for one
//! network, with the network's link model as its per-pair lookup, until SIGTERM or SIGINT
//! (which `down` sends). On SIGHUP (sent by run-time changes) it re-reads the network's
//! state file and swaps in the new model; packets already held keep their due times, and a
//! pair's packets never overtake each other.

use crate::error::Error;
use crate::firewall::QueueRules;
use crate::state::{load, run_dir, save, State};
use delayq::{Engine, EngineConfig, PairParams};
use nix::sys::signal::{kill, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The subcommand of the p2plab binary that runs a delay engine.
const SUBCOMMAND: &str = "engine";

/// The arguments, after the binary, that run the delay engine of network `name`.
pub fn engine_args(name: &str) -> [&str; 3] {
    [SUBCOMMAND, "--name", name]
}

/// Which p2plab binary runs delay engines (its hidden `engine` subcommand calls [`run`]):
/// by default this same executable; callers that are not p2plab, such as tests, name one.
#[derive(Clone, Debug, Default)]
pub struct EngineBinary {
    exe: Option<PathBuf>,
}

impl EngineBinary {
    /// The p2plab binary at `exe`.
    pub fn at(exe: impl Into<PathBuf>) -> Self {
        EngineBinary {
            exe: Some(exe.into()),
        }
    }

    /// Starts the delay engine of network `name` (`EXE engine --name NAME`), output to its
    /// engine log, with SIGHUP blocked until [`run`] handles it; returns its pid at once.
    pub fn spawn(&self, name: &str) -> Result<u32, StartError> {
        let exe = match &self.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().map_err(StartError::NoBinary)?,
        };
        let path = engine_log(name);
        let log = std::fs::File::create(&path).map_err(|error| StartError::Log {
            path: path.clone(),
            error,
        })?;
        let mut command = Command::new(exe);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // pthread_sigmask, which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            command.pre_exec(|| hangup_mask(SigmaskHow::SIG_BLOCK).map_err(std::io::Error::from));
        }
        let child = command
            .args(engine_args(name))
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|error| StartError::Log { path, error })?,
            )
            .stderr(log)
            .spawn()
            .map_err(StartError::Spawn)?;
        Ok(child.id())
    }
}

/// Why the delay engine's process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot find the p2plab binary: {0}")]
    NoBinary(std::io::Error),
    #[error("{}: {error}", path.display())]
    Log {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot start the delay engine: {0}")]
    Spawn(std::io::Error),
}

/// The model's per-pair lookup: (one-way delay in µs, loss) by (source, destination).
type Lookup = Box<dyn Fn(Ipv4Addr, Ipv4Addr) -> Option<(u64, f64)> + Send + Sync>;

/// Polling for the last 50 us before each due verdict while the engine sees under 20k
/// packets/s (delayq's default), sleeping only above: polling keeps wake-ups on time on a
/// busy virtual machine (the RTT tests need it), while at 100k packets/s it took the core
/// the sender needed (delayq's bench, three repetitions each: sleeping sustained 100k+).
const SPIN: Duration = Duration::from_micros(50);

/// Runs the engine of network `name` until SIGTERM or SIGINT; blocks. The SIGHUP handler
/// is in place before the state file is read, and [`EngineBinary::spawn`] starts the engine with
/// SIGHUP blocked, so a change saved at any moment of the start is never missed (nor does
/// its SIGHUP end the engine): its signal waits until the handler can take it.
pub fn run(name: &str) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| e.to_string())?;
    let state = load(name).map_err(|e| e.to_string())?;
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
            match load(&name) {
                Ok(s) => {
                    let new: Lookup = Box::new(s.model.lookup());
                    *lookup.write().unwrap_or_else(PoisonError::into_inner) = new;
                }
                Err(e) => eprintln!("p2plab engine: cannot reload the link model: {e}"),
            }
        }
    });
}

/// How long a freshly started delay engine must stay up before the rules go in.
const ENGINE_START: Duration = Duration::from_millis(200);

/// Starts the delay engine of `state` (its pid recorded before anything else), checks that
/// it stays up, then installs `rules` (already recorded in the state file).
pub(crate) fn start_engine(
    state: &mut State,
    rules: &QueueRules,
    engine: &EngineBinary,
) -> Result<(), Error> {
    let pid = engine.spawn(&state.name)?;
    state.engine_pid = Some(pid);
    save(state)?;
    std::thread::sleep(ENGINE_START);
    if !running(pid) {
        let log = std::fs::read_to_string(engine_log(&state.name)).unwrap_or_default();
        return Err(Error::EngineExited {
            log: log.trim().to_string(),
        });
    }
    rules.add().map_err(Error::Rules)
}

/// Whether process `pid` is the delay engine of network `name` (pids get reused).
fn is_engine(pid: u32, name: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| is_engine_cmdline(&c, name))
        .unwrap_or(false)
}

/// Whether `cmdline` (arguments separated by NUL, as `/proc/PID/cmdline` holds them) runs
/// the delay engine of network `name`.
fn is_engine_cmdline(cmdline: &[u8], name: &str) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.contains(&SUBCOMMAND.as_bytes()) && args.contains(&name.as_bytes())
}

/// Tells the delay engine of network `name` to re-read the link model from its state file
/// (saved before), if `pid` is still that engine.
pub(crate) fn reload(pid: u32, name: &str) {
    if is_engine(pid, name) {
        // the engine handles SIGHUP by re-reading its state file; one that ended since has
        // nothing to re-read
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGHUP);
    }
}

/// Stops the engine if `pid` is still our engine for `name`; whether it was running (else
/// it had ended by itself, and its log says why).
pub(crate) fn stop_engine(pid: u32, name: &str) -> bool {
    let ours = || is_engine(pid, name);
    if !ours() {
        return false;
    }
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let start = Instant::now();
    while ours() && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if ours() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    true
}

/// Whether the engine of `state` (if it has one) is running.
pub(crate) fn engine_alive(state: &State) -> Option<bool> {
    state.engine_pid.map(running)
}

/// Why the network of `state` no longer emulates its topology: its delay engine exited
/// (packets to the virtual prefixes then wait in the queue forever), with the engine's last
/// words from its log.
pub(crate) fn engine_failure(state: &State) -> Option<String> {
    if engine_alive(state)? {
        return None;
    }
    let log = std::fs::read_to_string(engine_log(&state.name)).unwrap_or_default();
    let last = log.lines().last().unwrap_or("no message");
    Some(format!(
        "the delay engine of network {} exited ({last}); see {}",
        state.name,
        engine_log(&state.name).display()
    ))
}

/// Whether process `pid` exists and has not exited (a zombie has).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
        })
        .unwrap_or(false)
}

/// Where the delay engine of network `name` writes its output.
pub(crate) fn engine_log(name: &str) -> PathBuf {
    run_dir().join(format!("{name}.engine.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_known_by_its_subcommand_and_network_name() {
        let cmdline = |args: &[&str]| args.join("\0").into_bytes();
        let ours = cmdline(&["/usr/bin/p2plab", "engine", "--name", "lab2"]);
        assert!(is_engine_cmdline(&ours, "lab2"));
        assert!(!is_engine_cmdline(&ours, "lab"));
        assert!(!is_engine_cmdline(
            &cmdline(&["/usr/bin/p2plab", "status", "lab2"]),
            "lab2"
        ));
        let mut argv = vec!["p2plab"];
        argv.extend(engine_args("x"));
        assert!(is_engine_cmdline(&cmdline(&argv), "x"));
    }
}
