//! `p2plab wrap --isolation bpf`: runs one command in a transient cgroup
//! (`p2plab/wrap-<pid>/node` below this process's own) whose parent has the `sockbpf`
//! programs attached, the node cgroup's id mapped to the node's address, and waits for it.
//! Then the programs are detached, what the command left running is killed and the cgroups
//! are removed, also after Ctrl-C: the terminal's SIGINT and SIGQUIT reach the command
//! (same process group) and this process outlives them; SIGTERM and SIGHUP sent to it are
//! passed on to the command.

use crate::wrap::WrapError;
use cgroup::{Hierarchies, RunGroup};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;
use sockbpf::Isolation;
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The node cgroup's name below the run's.
const NODE: &str = "node";

/// Runs `cmd` as the node with address `ip`; its exit status, 128 + N after signal N.
pub fn run(cmd: Command, ip: Ipv4Addr) -> Result<i32, WrapError> {
    let path = PathBuf::from(cmd.get_program());
    let cleanup = |source| WrapError::Cleanup {
        path: path.clone(),
        source,
    };
    // Taken over before anything is set up, so that no signal ends this process with the
    // cgroups or the programs left behind.
    let signals = Signals::new([SIGINT, SIGQUIT, SIGTERM, SIGHUP]).map_err(cleanup)?;
    let h = Hierarchies::detect().map_err(cleanup)?;
    let run = RunGroup::create(&h, &format!("wrap-{}", std::process::id()))
        .map_err(|e| WrapError::Bpf(sockbpf::Error::Run(e)))?;
    let outcome = run_in(cmd, ip, &run, &path, signals);
    let removed = run.remove().map_err(cleanup);
    let status = outcome?;
    removed.map(|()| status)
}

/// The part of [`run`] between creating the run's cgroups and removing them.
fn run_in(
    mut cmd: Command,
    ip: Ipv4Addr,
    run: &RunGroup,
    path: &Path,
    mut signals: Signals,
) -> Result<i32, WrapError> {
    let dir = sockbpf::v2_dir(run)?;
    let node = run
        .node(NODE, None, None)
        .map_err(|e| WrapError::Bpf(sockbpf::Error::Run(e)))?;
    let isolation = Isolation::attach(dir)?;
    isolation.assign(&dir.join(NODE), ip)?;
    let files = node
        .procs_files()
        .map_err(|e| WrapError::Bpf(sockbpf::Error::Run(e)))?;
    let fds = cgroup::raw_fds(&files);
    // SAFETY: the closure only calls write(2) on descriptors opened before the fork.
    unsafe { cmd.pre_exec(move || cgroup::join_self(&fds)) };
    let mut child = cmd.spawn().map_err(|source| WrapError::Exec {
        path: path.to_path_buf(),
        source,
    })?;
    let pid = Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let forward = std::thread::spawn(move || {
        for sig in signals.forever() {
            if matches!(sig, SIGTERM | SIGHUP) {
                // The command may have exited already: nothing to pass the signal to.
                let _ = Signal::try_from(sig).map(|s| kill(pid, s));
            }
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forward.join();
    let status = status.map_err(|source| WrapError::Wait {
        path: path.to_path_buf(),
        source,
    })?;
    isolation
        .detach()
        .map_err(|source: io::Error| WrapError::Cleanup {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
