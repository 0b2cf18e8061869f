//! The scheduler's seam to the machine: starting, signalling and reaping node processes,
//! their cgroups' usage, the host's CPU counters, and the time. [`System`] is this host
//! (the preload-shim [`Launcher`], `waitpid`, SIGCHLD, the node cgroups, `/proc/stat`, the
//! wall clock); the scheduler's tests give a fake one.

use crate::cpu::Ticks;
use crate::spawn::{Launcher, Spec};
use cgroup::{NodeGroup, RunGroup};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Spawner threads for a large batch of starts, and the batch size that uses them.
const SPAWNERS: usize = 4;
const PARALLEL_FROM: usize = 16;

/// A process about to be started: role `role` on node `node`.
pub(super) struct Job<'a> {
    pub role: usize,
    pub node: usize,
    pub argv: Vec<String>,
    pub env: &'a [(String, String)],
    pub ip: Ipv4Addr,
    /// The node's name.
    pub name: &'a str,
    pub dir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exit {
    Code(i32),
    Signal(Signal),
}

/// What reaping a process found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reaped {
    /// It still runs (or is stopped).
    Running,
    Ended(Exit),
    /// It is not our child any more (reaped elsewhere): it has ended, how is unknown.
    Gone,
}

/// What the scheduler needs of the machine it runs on.
pub(super) trait Host {
    /// Starts every job, in order: each gives its pid or why it did not start, and when
    /// it started (since the run began).
    fn start(&mut self, jobs: &[Job<'_>]) -> Vec<(io::Result<u32>, Duration)>;
    /// Sends `sig` to the process group of `pid`.
    fn signal(&mut self, pid: u32, sig: Signal);
    /// Whether process `pid` ended; `block` waits until it has.
    fn reap(&mut self, pid: u32, block: bool) -> Reaped;
    /// Whether a child may have ended since the last call.
    fn child_ended(&mut self) -> bool;
    /// What node `node`'s cgroup used so far (nothing without one).
    fn usage(&self, node: usize) -> cgroup::Usage;
    /// The host's CPU counters now, if they can be read.
    fn cpu_ticks(&self) -> Option<Ticks>;
    /// Ends whatever is left in the run's cgroups.
    fn kill_all(&mut self);
    /// Time since the run began (its time 0).
    fn now(&self) -> Duration;
    fn sleep(&mut self, d: Duration);
    /// The host's clock.
    fn wall(&self) -> SystemTime;
    /// The run begins (began) at `t0` of the host's clock, which is not in the future.
    fn begin_at(&mut self, t0: SystemTime);
}

/// This host.
pub(super) struct System<'a> {
    launcher: Launcher,
    /// Each node's cgroup, if any.
    groups: Vec<Option<NodeGroup>>,
    cgroups: Option<&'a RunGroup>,
    /// Set when a child ended (SIGCHLD).
    child_ended: Arc<AtomicBool>,
    t0: Instant,
}

impl<'a> System<'a> {
    /// The run begins now (see [`Host::begin_at`]).
    pub fn new(shim: &Path, groups: Vec<Option<NodeGroup>>, cgroups: Option<&'a RunGroup>) -> Self {
        let system = System {
            launcher: Launcher::new(shim),
            groups,
            cgroups,
            child_ended: Arc::new(AtomicBool::new(true)),
            t0: Instant::now(),
        };
        // Reap when a child has ended, and at every poll in case a signal merged.
        let _ = signal_hook::flag::register(
            signal_hook::consts::SIGCHLD,
            Arc::clone(&system.child_ended),
        );
        system
    }
}

impl Host for System<'_> {
    /// Large batches are spawned from several threads: a spawn waits until its child has
    /// exec'd, and on a busy machine that wait, not our work, bounds the launch rate.
    fn start(&mut self, jobs: &[Job<'_>]) -> Vec<(io::Result<u32>, Duration)> {
        let (launcher, groups, t0) = (&self.launcher, &self.groups, self.t0);
        let spawn = |job: &Job<'_>| {
            let pid = launcher.start(&Spec {
                argv: &job.argv,
                env: job.env,
                ip: job.ip,
                node: job.name,
                dir: &job.dir,
                stdout: &job.stdout,
                stderr: &job.stderr,
                cgroup: groups[job.node].as_ref(),
            });
            (pid, t0.elapsed())
        };
        if jobs.len() < PARALLEL_FROM {
            return jobs.iter().map(spawn).collect();
        }
        let chunk = jobs.len().div_ceil(SPAWNERS);
        std::thread::scope(|scope| {
            let workers: Vec<_> = jobs
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(spawn).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        })
    }

    fn signal(&mut self, pid: u32, sig: Signal) {
        let _ = killpg(Pid::from_raw(pid as i32), sig);
    }

    fn reap(&mut self, pid: u32, block: bool) -> Reaped {
        let flags = if block {
            None
        } else {
            Some(WaitPidFlag::WNOHANG)
        };
        match waitpid(Pid::from_raw(pid as i32), flags) {
            Ok(WaitStatus::Exited(_, code)) => Reaped::Ended(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => Reaped::Ended(Exit::Signal(sig)),
            Ok(_) => Reaped::Running,
            Err(_) => Reaped::Gone,
        }
    }

    fn child_ended(&mut self) -> bool {
        self.child_ended.swap(false, Ordering::Relaxed)
    }

    fn usage(&self, node: usize) -> cgroup::Usage {
        self.groups[node]
            .as_ref()
            .map(NodeGroup::usage)
            .unwrap_or_default()
    }

    fn cpu_ticks(&self) -> Option<Ticks> {
        Ticks::read()
    }

    fn kill_all(&mut self) {
        if let Some(run) = self.cgroups {
            let _ = run.kill_all();
        }
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    fn begin_at(&mut self, t0: SystemTime) {
        let ago = SystemTime::now().duration_since(t0).unwrap_or_default();
        self.t0 = Instant::now().checked_sub(ago).unwrap_or(self.t0);
    }
}
